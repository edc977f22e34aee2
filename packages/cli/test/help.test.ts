import * as CliConfig from "@effect/cli/CliConfig"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as Usage from "@effect/cli/Usage"
import * as Option from "effect/Option"
import { describe, expect, it } from "vitest"
import { helpPage, oneLine, render, typeParagraphs, withoutParagraphs } from "../src/internal/help.js"

describe("help", () => {
  const options = Options.all([
    Options.text("endpoint").pipe(Options.withDescription("The admin."), Options.optional),
    Options.boolean("insecure").pipe(Options.withDescription("No TLS.")),
    Options.integer("timeout").pipe(Options.withDescription("Seconds."), Options.withDefault(60)),
    Options.choice("keyring", ["file", "memory"]).pipe(Options.withDescription("Where."), Options.optional)
  ])

  it("drops the paragraphs @effect/cli writes for an option's type, keeps the descriptions", () => {
    const full = render(Options.getHelp(options), false)
    expect(full).toContain("A user-defined piece of text.")
    expect(full).toContain("One of the following: file, memory")
    const help = render(withoutParagraphs(Options.getHelp(options), typeParagraphs([["file", "memory"]])), false)
    for (const boilerplate of ["A user-defined", "A true or false", "An integer", "optional", "One of the following"]) {
      expect(help).not.toContain(boilerplate)
    }
    for (const kept of ["--endpoint", "The admin.", "--insecure", "No TLS.", "--timeout", "Seconds.", "Where."]) {
      expect(help).toContain(kept)
    }
    // A description that happens to read like a type's paragraph is not one of an option's types here.
    const own = HelpDoc.p("One of the following: a, b")
    expect(withoutParagraphs(own, typeParagraphs([["file", "memory"]]))).toEqual(own)
  })

  it("renders the page as @effect/cli does, plain or coloured; an error on one line", () => {
    const page = helpPage({
      name: "flyte-auth",
      version: "1.2.3",
      usage: Usage.named(["--json"], Option.none()),
      help: HelpDoc.p("Prints it."),
      config: CliConfig.defaultConfig
    })
    const plain = render(page, false)
    expect(plain).toMatch(/^flyte-auth\n\nflyte-auth 1\.2\.3\n\nUSAGE\n\n\$ .*\n\nPrints it\.\n$/)
    expect(plain).not.toContain("\u001b[")
    expect(render(page, true)).toContain("\u001b[")
    expect(oneLine(HelpDoc.sequence(HelpDoc.p("Invalid  subcommand"), HelpDoc.p("use one of 'a'")))).toBe(
      "Invalid subcommand use one of 'a'"
    )
  })
})
