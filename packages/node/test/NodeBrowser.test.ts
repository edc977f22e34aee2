import { describe, expect, it } from "@effect/vitest"
import { Browser } from "@flyte-auth/core"
import { NodeBrowser } from "@flyte-auth/node"
import type { Layer } from "effect"
import { Console, Effect } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

// Characters a shell would act on: nothing here may be interpreted, the URL must arrive as one argument.
const url = "http://127.0.0.1:53682/authorize?client_id=flytectl&scope=openid offline&state=a;b$(touch pwned)`id`"

/** Runs `effect` with a Console whose stderr lines are collected. */
const withStderr = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const base = yield* Console.consoleWith(Effect.succeed)
    const console: Console.Console = {
      ...base,
      error: (...args) => Effect.sync(() => void lines.push(args.join(" ")))
    }
    const result = yield* Effect.either(Effect.withConsole(effect, console))
    return { result, stderr: lines.join("\n") }
  })

const openWith = (layer: Layer.Layer<Browser.Browser>) =>
  withStderr(Effect.flatMap(Browser.Browser, (browser) => browser.open(url)).pipe(Effect.provide(layer)))

const tempDir = () => Fs.mkdtempSync(Path.join(Os.tmpdir(), "flyte-auth-browser-"))

/** A fake system opener on PATH, for the duration of the effect. */
const withFakeOpener = <A, E, R>(script: string, effect: (dir: string) => Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const dir = tempDir()
      const opener = Path.join(dir, NodeBrowser.systemOpener()[0])
      Fs.writeFileSync(opener, `#!/bin/sh\n${script}\n`, { mode: 0o755 })
      const path = process.env.PATH
      process.env.PATH = dir
      return { dir, path }
    }),
    ({ dir }) => effect(dir),
    ({ dir, path }) =>
      Effect.sync(() => {
        process.env.PATH = path
        Fs.rmSync(dir, { recursive: true, force: true })
      })
  )

describe.skipIf(process.platform === "win32")("NodeBrowser.layerSystem", () => {
  it.live("prints the URL and hands it, as one argument, to the system opener", () =>
    withFakeOpener("printf '%s\\n' \"$#\" \"$1\" > \"${0%/*}/opened\"", (dir) =>
      Effect.gen(function*() {
        const { result, stderr } = yield* openWith(NodeBrowser.layerSystem)
        expect(result._tag).toBe("Right")
        expect(stderr).toContain(url)
        // The opener runs detached; wait for its file.
        const opened = Path.join(dir, "opened")
        for (let i = 0; i < 100 && !(Fs.existsSync(opened) && Fs.readFileSync(opened, "utf8").endsWith("\n")); i++) {
          yield* Effect.sleep("20 millis")
        }
        expect(Fs.readFileSync(opened, "utf8")).toBe(`1\n${url}\n`)
        expect(Fs.existsSync(Path.join(dir, "pwned"))).toBe(false)
      })))

  it.live("an opener that fails is an AuthenticationError (Browser), and the URL was printed anyway", () =>
    withFakeOpener("exit 3", () =>
      Effect.gen(function*() {
        const { result, stderr } = yield* openWith(NodeBrowser.layerSystem)
        expect(stderr).toContain(url)
        expect(result._tag === "Left" && result.left).toMatchObject({
          _tag: "AuthenticationError",
          reason: "Browser",
          description: `${NodeBrowser.systemOpener()[0]} exited with code 3`
        })
      })))

  it.live("a missing opener is an AuthenticationError (Browser)", () =>
    withFakeOpener("exit 0", (dir) =>
      Effect.gen(function*() {
        Fs.rmSync(Path.join(dir, NodeBrowser.systemOpener()[0]))
        const { result, stderr } = yield* openWith(NodeBrowser.layerSystem)
        expect(stderr).toContain(url)
        expect(result._tag === "Left" && result.left.reason).toBe("Browser")
        expect(result._tag === "Left" && result.left.message).toContain("ENOENT")
      })))
})

describe("NodeBrowser.layerCommand", () => {
  const node = process.execPath

  it.live("runs argv without a shell, the URL as the last argument", () => {
    const dir = tempDir()
    const out = Path.join(dir, "argv.json")
    const script = "require('fs').writeFileSync(process.argv[1], JSON.stringify(process.argv.slice(2)))"
    return Effect.gen(function*() {
      const { result, stderr } = yield* openWith(NodeBrowser.layerCommand([node, "-e", script, out, "--flag"]))
      expect(result._tag).toBe("Right")
      expect(stderr).toContain(url)
      expect(JSON.parse(Fs.readFileSync(out, "utf8"))).toEqual(["--flag", url])
      expect(Fs.readdirSync(dir)).toEqual(["argv.json"])
    }).pipe(Effect.ensuring(Effect.sync(() => Fs.rmSync(dir, { recursive: true }))))
  })

  it.live("leaves a command that keeps running (a browser) to run on its own", () => {
    const dir = tempDir()
    const pidFile = Path.join(dir, "pid")
    const script = "require('fs').writeFileSync(process.argv[1], String(process.pid)); setTimeout(() => {}, 60000)"
    return Effect.gen(function*() {
      const { result } = yield* openWith(NodeBrowser.layerCommand([node, "-e", script, pidFile]))
      expect(result._tag).toBe("Right")
      const pid = Number(Fs.readFileSync(pidFile, "utf8"))
      expect(() => process.kill(pid, 0)).not.toThrow() // still running
      process.kill(pid)
    }).pipe(Effect.ensuring(Effect.sync(() => Fs.rmSync(dir, { recursive: true }))))
  })

  it.live("a failing or missing command is an AuthenticationError (Browser)", () =>
    Effect.gen(function*() {
      const failing = yield* openWith(NodeBrowser.layerCommand([node, "-e", "process.exit(4)"]))
      expect(failing.stderr).toContain(url)
      expect(failing.result._tag === "Left" && failing.result.left).toMatchObject({
        reason: "Browser",
        description: `${node} exited with code 4`
      })
      const missing = yield* openWith(NodeBrowser.layerCommand(["/nonexistent/flyte-auth-browser"]))
      expect(missing.result._tag === "Left" && missing.result.left.reason).toBe("Browser")
      const empty = yield* openWith(NodeBrowser.layerCommand([]))
      expect(empty.result._tag === "Left" && empty.result.left.description).toBe("the browser command is empty")
    }))
})

describe("NodeBrowser.layerCallback", () => {
  it.live("hands the URL to the callback and prints it", () =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      const { result, stderr } = yield* openWith(NodeBrowser.layerCallback(async (u) => void seen.push(u)))
      expect(result._tag).toBe("Right")
      expect(seen).toEqual([url])
      expect(stderr).toContain(url)
    }))

  it.live("a callback that throws is an AuthenticationError (Browser)", () =>
    Effect.gen(function*() {
      const { result } = yield* openWith(NodeBrowser.layerCallback(() => {
        throw new Error("no display")
      }))
      expect(result._tag === "Left" && result.left).toMatchObject({
        reason: "Browser",
        description: "the browser callback failed: no display"
      })
    }))
})

describe("NodeBrowser.openers (which command opens the browser)", () => {
  const u = "https://idp.example/auth?a=1&b=2"
  const linux = { platform: "linux" as const, env: {}, osRelease: "6.1.0-13-amd64" }

  it("macOS open, Windows rundll32, Linux and the BSDs xdg-open", () => {
    expect(NodeBrowser.openers(u, { platform: "darwin", env: {} })).toEqual([["open", u]])
    expect(NodeBrowser.openers(u, { platform: "win32", env: {} })).toEqual([[
      "rundll32",
      "url.dll,FileProtocolHandler",
      u
    ]])
    expect(NodeBrowser.openers(u, linux)).toEqual([["xdg-open", u]])
    expect(NodeBrowser.openers(u, { platform: "freebsd", env: {} })).toEqual([["xdg-open", u]])
  })

  it("WSL (its variables or a microsoft kernel) opens the Windows browser: wslview, cmd.exe start, PowerShell", () => {
    for (
      const environment of [
        { ...linux, env: { WSL_DISTRO_NAME: "Debian" } },
        { ...linux, env: { WSL_INTEROP: "/run/WSL/1_interop" } },
        { ...linux, osRelease: "5.15.153.1-microsoft-standard-WSL2" }
      ]
    ) {
      expect(NodeBrowser.isWsl(environment)).toBe(true)
      expect(NodeBrowser.openers(u, environment)).toEqual([
        ["wslview", u],
        // cmd.exe would end the command at `&`: its metacharacters are escaped.
        ["cmd.exe", "/c", "start", "\"\"", "https://idp.example/auth?a=1^&b=2"],
        ["powershell.exe", "-NoProfile", "-NonInteractive", "-Command", `Start-Process '${u}'`]
      ])
    }
    expect(NodeBrowser.isWsl(linux)).toBe(false)
    // Only Linux is WSL.
    expect(NodeBrowser.isWsl({ platform: "darwin", env: { WSL_DISTRO_NAME: "x" } })).toBe(false)
    expect(NodeBrowser.openers("https://x/?q='a'", { ...linux, env: { WSL_DISTRO_NAME: "D" } })[2].at(-1)).toBe(
      "Start-Process 'https://x/?q=''a'''"
    )
  })

  it("BROWSER wins everywhere: a :-list of commands, %s for the URL; BROWSER=none opens nothing", () => {
    const wsl = { ...linux, env: { WSL_DISTRO_NAME: "Debian" } }
    expect(NodeBrowser.openers(u, { ...wsl, env: { ...wsl.env, BROWSER: "firefox --private-window" } })).toEqual([
      ["firefox", "--private-window", u]
    ])
    expect(NodeBrowser.openers(u, { platform: "darwin", env: { BROWSER: "lynx -dump %s:w3m" } })).toEqual([
      ["lynx", "-dump", u],
      ["w3m", u]
    ])
    expect(NodeBrowser.openers(u, { ...linux, env: { BROWSER: "none" } })).toEqual([])
    expect(NodeBrowser.openers(u, { ...linux, env: { BROWSER: "  " } })).toEqual([["xdg-open", u]])
  })
})

describe.skipIf(process.platform === "win32")("NodeBrowser.layerSystem with several openers", () => {
  it.live("tries the next opener when one is missing; BROWSER=none fails (a warning for the flow), URL printed", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const second = Path.join(dir, "second-browser")
      Fs.writeFileSync(second, `#!/bin/sh\nprintf '%s\\n' "$1" > "${dir}/opened"\n`, { mode: 0o755 })
      const saved = process.env.BROWSER
      try {
        process.env.BROWSER = `${Path.join(dir, "missing-browser")}:${second}`
        const { result } = yield* openWith(NodeBrowser.layerSystem)
        expect(result._tag).toBe("Right")
        const opened = Path.join(dir, "opened")
        for (let i = 0; i < 100 && !Fs.existsSync(opened); i++) yield* Effect.sleep("20 millis")
        expect(Fs.readFileSync(opened, "utf8")).toBe(`${url}\n`)
        process.env.BROWSER = "none"
        const none = yield* openWith(NodeBrowser.layerSystem)
        expect(none.stderr).toContain(url)
        expect(none.result._tag === "Left" && none.result.left.reason).toBe("Browser")
      } finally {
        if (saved === undefined) delete process.env.BROWSER
        else process.env.BROWSER = saved
        Fs.rmSync(dir, { recursive: true, force: true })
      }
    }))
})

describe("NodeBrowser.noBrowserReason (whether a browser can be opened here)", () => {
  const desktop = { platform: "linux" as const, env: { DISPLAY: ":0" }, osRelease: "6.1.0" }

  it("a Linux or BSD desktop, macOS, Windows and WSL can open one", () => {
    expect(NodeBrowser.noBrowserReason(desktop)).toBeUndefined()
    expect(NodeBrowser.noBrowserReason({ ...desktop, env: { WAYLAND_DISPLAY: "wayland-0" } })).toBeUndefined()
    expect(NodeBrowser.noBrowserReason({ platform: "darwin", env: {} })).toBeUndefined()
    expect(NodeBrowser.noBrowserReason({ platform: "win32", env: {} })).toBeUndefined()
    expect(NodeBrowser.noBrowserReason({ platform: "linux", env: { WSL_DISTRO_NAME: "Debian" } })).toBeUndefined()
  })

  it("Linux or a BSD without DISPLAY and WAYLAND_DISPLAY, SSH, a container, BROWSER=none cannot", () => {
    expect(NodeBrowser.noBrowserReason({ platform: "linux", env: {} })).toMatch(/no display/)
    expect(NodeBrowser.noBrowserReason({ platform: "freebsd", env: { DISPLAY: " " } })).toMatch(/no display/)
    for (const key of ["SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY"]) {
      expect(NodeBrowser.noBrowserReason({ ...desktop, env: { ...desktop.env, [key]: "10.0.0.1 22" } })).toBe(
        "this is an SSH session"
      )
      expect(NodeBrowser.noBrowserReason({ platform: "darwin", env: { [key]: "x" } })).toBe("this is an SSH session")
    }
    expect(NodeBrowser.noBrowserReason({ ...desktop, inContainer: true })).toBe("this runs in a container")
    expect(NodeBrowser.noBrowserReason({ platform: "darwin", env: { BROWSER: "none" } })).toBe("BROWSER=none")
  })

  it("a BROWSER the user named is tried, even over SSH or without a display", () => {
    expect(NodeBrowser.noBrowserReason({ platform: "linux", env: { BROWSER: "w3m", SSH_TTY: "/dev/pts/1" } }))
      .toBeUndefined()
  })
})
