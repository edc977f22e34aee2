import effectPlugin from "@effect/eslint-plugin"
import tseslint from "typescript-eslint"

export default tseslint.config(
  {
    ignores: ["**/dist/**", "**/src/gen/**", "**/build/**", "**/node_modules/**", "**/*.mjs", "**/*.cjs", ".tools/**", "coverage/**"]
  },
  ...tseslint.configs.recommended,
  ...effectPlugin.configs.dprint,
  {
    rules: {
      "@effect/dprint": ["error", {
        config: {
          indentWidth: 2,
          lineWidth: 120,
          semiColons: "asi",
          quoteStyle: "alwaysDouble",
          trailingCommas: "never",
          operatorPosition: "maintain",
          "arrowFunction.useParentheses": "force"
        }
      }],
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-namespace": "off",
      "@typescript-eslint/no-empty-object-type": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
      "no-console": "error"
    }
  },
  {
    files: ["packages/cli/src/**", "packages/*/test/**", "test/**", "examples/**", "scripts/**"],
    rules: { "no-console": "off" }
  }
)
