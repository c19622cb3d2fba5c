/**
 * The import specifiers of a TypeScript/JavaScript source, without a compiler: a small lexer
 * that skips comments, strings, template text and regular expressions (so an `import` inside a
 * JSDoc `@example` or a string is not an edge), then a scan of its tokens for
 *
 * - `import ... from "x"`, `import type ... from "x"`, `import "x"`;
 * - `export * from "x"`, `export * as n from "x"`, `export { a } from "x"`, `export type ...`;
 * - `import("x")` with a string literal: dynamic imports and type-position `import("x").T`.
 *
 * @module
 */

/** How a file refers to another. */
export type ImportKind = "import" | "export" | "dynamic";

/** One import specifier found in a source file. */
export interface ImportRef {
  /** The specifier as written (`"../vit/mod.ts"`, `"@tensorflow/tfjs"`). */
  specifier: string;
  /** 1-based line of the specifier. */
  line: number;
  /** `import ... from`, `export ... from`, or `import("...")`. */
  kind: ImportKind;
  /** `import type` / `export type` (the whole clause, not a single `type` member). */
  typeOnly: boolean;
}

type TokenType = "id" | "str" | "punct" | "num" | "tmpl" | "regex";

interface Token {
  type: TokenType;
  /** Identifier name, punctuator, or the cooked string value. */
  value: string;
  line: number;
}

/** Keywords after which a `/` starts a regular expression, not a division. */
const REGEX_AFTER_KEYWORD = new Set([
  "return",
  "typeof",
  "instanceof",
  "in",
  "of",
  "new",
  "delete",
  "void",
  "throw",
  "case",
  "do",
  "else",
  "yield",
  "await",
]);

const ID_START = /[\p{ID_Start}$_#]/u;
const ID_PART = /[\p{ID_Continue}$\u200c\u200d]/u;

function isIdStart(c: string): boolean {
  return ID_START.test(c);
}

function isIdPart(c: string): boolean {
  return ID_PART.test(c);
}

function isDigit(c: string): boolean {
  return c >= "0" && c <= "9";
}

/** Splits `src` into tokens; comments and template text vanish, strings keep their value. */
export function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  let braces = 0;
  // brace depth at each open `${`, innermost last: a `}` at that depth resumes template text
  const templates: number[] = [];
  const n = src.length;

  const regexAllowed = (): boolean => {
    const prev = out[out.length - 1];
    if (prev === undefined) return true;
    if (prev.type === "id") return REGEX_AFTER_KEYWORD.has(prev.value);
    if (prev.type === "punct") {
      return !(prev.value === ")" || prev.value === "]" || prev.value === "}");
    }
    return false; // after a string, number, template or regex: division
  };

  /** Reads template text from `i` (just past a backtick or `}`) to the closing backtick or `${`. */
  const templateText = (): void => {
    const start = line;
    while (i < n) {
      const c = src[i];
      if (c === "\\") {
        if (src[i + 1] === "\n") line++;
        i += 2;
      } else if (c === "`") {
        i++;
        out.push({ type: "tmpl", value: "", line: start });
        return;
      } else if (c === "$" && src[i + 1] === "{") {
        i += 2;
        templates.push(braces);
        braces++;
        out.push({ type: "tmpl", value: "", line: start });
        return;
      } else {
        if (c === "\n") line++;
        i++;
      }
    }
    out.push({ type: "tmpl", value: "", line: start });
  };

  while (i < n) {
    const c = src[i];
    if (c === "\n") {
      line++;
      i++;
    } else if (
      c === " " || c === "\t" || c === "\r" || c === "\f" || c === "\v" || c === "\uFEFF"
    ) {
      i++;
    } else if (c === "/" && src[i + 1] === "/") {
      while (i < n && src[i] !== "\n") i++;
    } else if (c === "/" && src[i + 1] === "*") {
      const end = src.indexOf("*/", i + 2);
      const stop = end < 0 ? n : end + 2;
      for (let k = i; k < stop; k++) if (src[k] === "\n") line++;
      i = stop;
    } else if (c === '"' || c === "'") {
      const start = line;
      let value = "";
      i++;
      while (i < n && src[i] !== c) {
        if (src[i] === "\\") {
          value += src[i + 1] ?? "";
          if (src[i + 1] === "\n") line++;
          i += 2;
        } else {
          if (src[i] === "\n") break; // unterminated: stop at the line end
          value += src[i];
          i++;
        }
      }
      i++;
      out.push({ type: "str", value, line: start });
    } else if (c === "`") {
      i++;
      templateText();
    } else if (
      c === "}" && templates.length > 0 && templates[templates.length - 1] === braces - 1
    ) {
      templates.pop();
      braces--;
      i++;
      templateText();
    } else if (c === "/" && regexAllowed()) {
      const start = line;
      i++;
      let cls = false;
      while (i < n && src[i] !== "\n") {
        const r = src[i];
        if (r === "\\") i += 2;
        else {
          i++;
          if (r === "[") cls = true;
          else if (r === "]") cls = false;
          else if (r === "/" && !cls) break;
        }
      }
      while (i < n && isIdPart(src[i])) i++; // flags
      out.push({ type: "regex", value: "", line: start });
    } else if (isDigit(c) || (c === "." && isDigit(src[i + 1] ?? ""))) {
      const start = i;
      i++;
      while (i < n && (isIdPart(src[i]) || src[i] === ".")) i++;
      out.push({ type: "num", value: src.slice(start, i), line });
    } else if (isIdStart(c) || c === "\\") {
      const start = i;
      i++;
      while (i < n && (isIdPart(src[i]) || src[i] === "\\")) i++;
      out.push({ type: "id", value: src.slice(start, i), line });
    } else {
      if (c === "{") braces++;
      else if (c === "}") braces--;
      out.push({ type: "punct", value: c, line });
      i++;
    }
  }
  return out;
}

/**
 * Every import specifier of a source file, in source order.
 *
 * @example
 * ```ts
 * import { parseImports } from "./_imports.ts";
 * const refs = parseImports('import type { A } from "./a.ts";\n// import "./no.ts"\nexport * from "./b.ts";');
 * if (refs.map((r) => r.specifier).join() !== "./a.ts,./b.ts") throw new Error("wrong imports");
 * ```
 */
export function parseImports(src: string): ImportRef[] {
  const t = tokenize(src);
  const refs: ImportRef[] = [];
  const isPunct = (k: number, v: string) => t[k]?.type === "punct" && t[k].value === v;
  const isId = (k: number, v?: string) =>
    t[k]?.type === "id" && (v === undefined || t[k].value === v);

  /**
   * From token `k`, an import/export clause (`type`? then names, braces, `*`, `as`, commas)
   * followed by `from "x"`. Returns the index of the string token, or -1.
   */
  const clauseThenFrom = (k: number): number => {
    let depth = 0;
    for (; k < t.length; k++) {
      const tok = t[k];
      if (tok.type === "id") {
        if (depth === 0 && tok.value === "from" && t[k + 1]?.type === "str") return k + 1;
        continue;
      }
      if (tok.type === "str" && depth > 0) continue; // `{ "a-b" as ab }`
      if (tok.type !== "punct") return -1;
      if (tok.value === "{") depth++;
      else if (tok.value === "}") {
        depth--;
        if (depth < 0) return -1;
        if (depth === 0 && !isId(k + 1, "from")) return -1; // `export { a };`
      } else if (tok.value !== "," && tok.value !== "*") return -1;
    }
    return -1;
  };

  for (let k = 0; k < t.length; k++) {
    const tok = t[k];
    if (tok.type !== "id" || (tok.value !== "import" && tok.value !== "export")) continue;
    if (isPunct(k - 1, ".")) continue; // `x.import`, not a keyword
    if (tok.value === "import") {
      if (isPunct(k + 1, ".")) continue; // import.meta
      if (isPunct(k + 1, "(")) {
        const s = t[k + 2];
        if (s?.type === "str" && (isPunct(k + 3, ")") || isPunct(k + 3, ","))) {
          refs.push({ specifier: s.value, line: s.line, kind: "dynamic", typeOnly: false });
        }
        continue;
      }
      if (t[k + 1]?.type === "str") {
        const s = t[k + 1];
        refs.push({ specifier: s.value, line: s.line, kind: "import", typeOnly: false });
        continue;
      }
      // `import type X from`, but `import type from "x"` imports a default named `type`
      const typeOnly = isId(k + 1, "type") && !(isId(k + 2, "from") && t[k + 3]?.type === "str");
      const at = clauseThenFrom(typeOnly ? k + 2 : k + 1);
      if (at >= 0) {
        refs.push({ specifier: t[at].value, line: t[at].line, kind: "import", typeOnly });
        k = at;
      }
      continue;
    }
    // export: only the re-exporting forms have a `from`
    const typeOnly = isId(k + 1, "type") && (isPunct(k + 2, "{") || isPunct(k + 2, "*"));
    const first = typeOnly ? k + 2 : k + 1;
    if (!isPunct(first, "{") && !isPunct(first, "*")) continue;
    const at = clauseThenFrom(first);
    if (at >= 0) {
      refs.push({ specifier: t[at].value, line: t[at].line, kind: "export", typeOnly });
      k = at;
    }
  }
  return refs;
}
