import * as Either from "effect/Either"
import { describe, expect, it } from "vitest"
import type { CommandLineOptions } from "../src/internal/commandLine.js"
import { commandIndex, hoistGlobalOptions, unknownOption } from "../src/internal/commandLine.js"

/** As `Cli.ts` derives them from its commands (here by hand, small). */
const options: CommandLineOptions = {
  global: { values: ["--endpoint", "--keyring", "--timeout", "--command"], flags: ["--insecure"] },
  root: { values: ["--endpoint", "--keyring", "--timeout", "--command"], flags: ["--insecure", "--help", "-h"] },
  commands: {
    token: { values: ["--endpoint", "--keyring", "--timeout", "--command"], flags: ["--insecure", "--help", "-h"] },
    status: {
      values: ["--endpoint", "--keyring", "--timeout", "--command"],
      flags: ["--insecure", "--json", "--help", "-h"]
    },
    sandbox: { values: ["--endpoint", "--admin-port", "--header-key"], flags: ["--help", "-h"] }
  }
}

const hoisted = (args: ReadonlyArray<string>) => hoistGlobalOptions(args, options)

describe("the command line around the @effect/cli parse", () => {
  it("moves the global options ahead of the command, values joined with =", () => {
    expect(hoisted(["status", "--json", "--endpoint", "e", "--insecure"])).toEqual(
      Either.right(["--endpoint=e", "--insecure", "status", "--json"])
    )
    // A value that is a command's name is not taken for the command.
    expect(hoisted(["token", "--command", "token"])).toEqual(Either.right(["--command=token", "token"]))
    expect(commandIndex(["--command", "token", "token"], options)).toBe(2)
    // A command's own options stay after it; `--` ends the options.
    expect(hoisted(["sandbox", "--admin-port", "0", "--", "--endpoint"])).toEqual(
      Either.right(["sandbox", "--admin-port", "0", "--", "--endpoint"])
    )
  })

  it("names an option without its value, wherever it stands", () => {
    expect(hoisted(["--endpoint"])).toEqual(Either.left("--endpoint needs a value"))
    expect(hoisted(["status", "--endpoint"])).toEqual(Either.left("--endpoint needs a value"))
    expect(hoisted(["token", "--endpoint"])).toEqual(Either.left("--endpoint needs a value"))
    expect(hoisted(["status", "--endpoint", "--json"])).toEqual(Either.left("--endpoint needs a value"))
    expect(hoisted(["sandbox", "--header-key"])).toEqual(Either.left("--header-key needs a value"))
    expect(hoisted(["sandbox", "--header-key", "--admin-port", "1"])).toEqual(Either.left("--header-key needs a value"))
    // A global option given twice, before and after the command or on one side (@effect/cli would keep one).
    expect(hoisted(["--keyring", "file", "token", "--keyring=memory"])).toEqual(
      Either.left("--keyring given more than once; give each option once")
    )
    expect(hoisted(["token", "--insecure", "--insecure"])).toEqual(
      Either.left("--insecure given more than once; give each option once")
    )
    // Fine: values, `=`, flags with a value, help anywhere, an unknown command.
    expect(Either.isRight(hoisted(["--endpoint=a:1", "status", "--json", "--insecure=false", "-h"]))).toBe(true)
    expect(Either.isRight(hoisted(["--endpoint", "a:1", "--keyring", "file", "status", "--timeout", "5"]))).toBe(true)
    expect(Either.isRight(hoisted(["tokn", "--bogus"]))).toBe(true)
  })

  it("names an unknown option, by the place it stands in", () => {
    expect(unknownOption(["--auth-mod", "DeviceFlow", "status"], options)).toBe(
      "unknown option --auth-mod (see flyte-auth --help)"
    )
    expect(unknownOption(["-v", "status"], options)).toBe("unknown option -v (see flyte-auth --help)")
    expect(unknownOption(["status", "--bogus=1"], options)).toBe(
      "unknown option --bogus (see flyte-auth status --help)"
    )
    // An option of one command is not one of another, nor of the program before the command.
    expect(unknownOption(["sandbox", "--json"], options)).toBe("unknown option --json (see flyte-auth sandbox --help)")
    expect(unknownOption(["--json", "status"], options)).toBe("unknown option --json (see flyte-auth --help)")
    // Known options, an unknown command (@effect/cli lists the commands), after `--`: nothing to name.
    expect(unknownOption(["--endpoint=a:1", "status", "--json", "--insecure=false", "-h"], options)).toBeUndefined()
    expect(unknownOption(["--endpoint", "--json", "status"], options)).toBeUndefined()
    expect(unknownOption(["tokn", "--bogus"], options)).toBeUndefined()
    expect(unknownOption(["status", "--", "--bogus"], options)).toBeUndefined()
  })
})
