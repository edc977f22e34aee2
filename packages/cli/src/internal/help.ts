/**
 * The help text and the usage errors of the full CLI, rendered from `@effect/cli`'s `HelpDoc` values: the help
 * without the lines `@effect/cli` adds for an option's type (they say nothing its own description does not), and
 * colours only on a terminal.
 *
 * @internal
 */
import type * as CliConfig from "@effect/cli/CliConfig"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Span from "@effect/cli/HelpDoc/Span"
import * as Options from "@effect/cli/Options"
import * as Usage from "@effect/cli/Usage"
import * as AnsiDoc from "@effect/printer-ansi/AnsiDoc"
import * as Arr from "effect/Array"

/**
 * The paragraphs `@effect/cli` writes into an option's help for its type ("A user-defined piece of text.", "A true
 * or false value.", "An integer.", "One of the following: …") and for an optional one ("This setting is
 * optional."): taken from the help it generates for undescribed options of those types, with the alternatives of
 * the CLI's choice options.
 *
 * @internal
 */
export const typeParagraphs = (choices: ReadonlyArray<ReadonlyArray<string>>): ReadonlySet<string> => {
  const samples = Options.all([
    Options.optional(Options.text("text")),
    Options.boolean("boolean"),
    Options.optional(Options.integer("integer")),
    ...choices.map((alternatives, i) => Options.choice(`choice-${i}`, alternatives))
  ])
  const found = new Set<string>()
  const collect = (doc: HelpDoc.HelpDoc): void => {
    switch (doc._tag) {
      case "Paragraph":
        found.add(paragraphKey(doc))
        return
      case "Sequence":
        collect(doc.left)
        return collect(doc.right)
      case "DescriptionList":
        for (const [, block] of doc.definitions) collect(block)
        return
      case "Enumeration":
        return doc.elements.forEach(collect)
      default:
        return
    }
  }
  collect(Options.getHelp(samples))
  return found
}

/** A paragraph's identity: its spans (plain data). */
const paragraphKey = (paragraph: HelpDoc.Paragraph): string => JSON.stringify(paragraph.value)

/**
 * `doc` without the paragraphs in `drop` (see `typeParagraphs`); sequences drop what becomes empty.
 *
 * @internal
 */
export const withoutParagraphs = (doc: HelpDoc.HelpDoc, drop: ReadonlySet<string>): HelpDoc.HelpDoc => {
  const walk = (doc: HelpDoc.HelpDoc): HelpDoc.HelpDoc => {
    switch (doc._tag) {
      case "Paragraph":
        return drop.has(paragraphKey(doc)) ? HelpDoc.empty : doc
      case "Sequence":
        return HelpDoc.sequence(walk(doc.left), walk(doc.right))
      case "DescriptionList":
        return HelpDoc.descriptionList(Arr.map(doc.definitions, ([span, block]) => [span, walk(block)] as const))
      case "Enumeration":
        return HelpDoc.enumeration(Arr.map(doc.elements, walk))
      default:
        return doc
    }
  }
  return walk(doc)
}

/**
 * The help `@effect/cli` would print for a command (`BuiltInOptions.ShowHelp`): the program's name, its version,
 * the usage and the command's help.
 *
 * @internal
 */
export const helpPage = (options: {
  readonly name: string
  readonly version: string
  readonly usage: Usage.Usage
  readonly help: HelpDoc.HelpDoc
  readonly config: CliConfig.CliConfig
}): HelpDoc.HelpDoc => {
  const usage = HelpDoc.sequence(
    HelpDoc.h1("USAGE"),
    Arr.reduceRight(
      Arr.map(Usage.enumerate(options.usage, options.config), (span) => HelpDoc.p(Span.concat(Span.text("$ "), span))),
      HelpDoc.empty,
      (left, right) => HelpDoc.sequence(left, right)
    )
  )
  return [HelpDoc.p(`${options.name} ${options.version}`), usage, options.help].reduce(
    (page, section) => HelpDoc.sequence(page, section),
    HelpDoc.h1(Span.code(options.name))
  )
}

/**
 * `doc` as text: with ANSI colours when `colors`, else plain.
 *
 * @internal
 */
export const render = (doc: HelpDoc.HelpDoc, colors: boolean): string =>
  colors ? HelpDoc.toAnsiText(doc) : AnsiDoc.render(AnsiDoc.unAnnotate(HelpDoc.toAnsiDoc(doc)), { style: "pretty" })

/**
 * `doc` as one line of plain text (for an error line).
 *
 * @internal
 */
export const oneLine = (doc: HelpDoc.HelpDoc): string => render(doc, false).replace(/\s+/g, " ").trim()
