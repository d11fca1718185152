/**
 * A code editor for JSON (and plain text such as XML): a real, labelled <textarea> the user types in,
 * laid transparently over a highlighted copy of its text, with a gutter of line numbers. Lines with
 * problems are marked in the gutter and the copy; the problems themselves are listed under the editor
 * (setProblems), each with a button that puts the caret on its line.
 *
 * Highlighting builds spans with textContent only. Tab keeps moving focus (no keyboard trap); Enter
 * keeps the current line's indentation.
 */
import { h, uid } from "./ui";

export interface Problem {
  line: number | null;
  message: string;
  /** Where it points, shown beside the message, e.g. `entities.0.unique_ids`. */
  path?: string;
  /** "error" refuses saving; "warning" does not. */
  severity: "error" | "warning";
}

export interface CodeEditor {
  element: HTMLElement;
  textarea: HTMLTextAreaElement;
  value(): string;
  setValue(text: string): void;
  setLanguage(language: "json" | "text"): void;
  setProblems(problems: Problem[]): void;
  goToLine(line: number): void;
}

const TOKEN = /("(?:[^"\\]|\\.)*"?)(\s*:)?|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|\b(true|false|null)\b|([{}[\],:])|(\s+)|([^\s"{}[\],:]+)/g;

/** One line of JSON as highlighted spans (a line is enough: JSON strings cannot span lines). */
function highlightLine(line: string): Node[] {
  const nodes: Node[] = [];
  for (const m of line.matchAll(TOKEN)) {
    const [text, str, colon, num, literal, punct] = m;
    if (str !== undefined) {
      nodes.push(h("span", { class: colon ? "tok-key" : "tok-string" }, str));
      if (colon) nodes.push(h("span", { class: "tok-punct" }, colon));
    } else if (num !== undefined) nodes.push(h("span", { class: "tok-number" }, num));
    else if (literal !== undefined) nodes.push(h("span", { class: "tok-literal" }, literal));
    else if (punct !== undefined) nodes.push(h("span", { class: "tok-punct" }, punct));
    else nodes.push(document.createTextNode(text));
  }
  return nodes;
}

export function createCodeEditor(options: { label: string; value: string; language: "json" | "text"; name: string; onInput?: () => void; hint?: string }): CodeEditor {
  let language = options.language;
  const id = uid("editor");
  const problemsId = `${id}-problems`;
  const hintId = `${id}-hint`;
  const textarea = h("textarea", {
    id,
    name: options.name,
    spellcheck: "false",
    autocomplete: "off",
    autocapitalize: "off",
    wrap: "off",
    "aria-describedby": [options.hint ? hintId : null, problemsId].filter(Boolean).join(" "),
  });
  textarea.value = options.value;
  const highlighted = h("pre", { "aria-hidden": "true" });
  const gutter = h("div", { class: "code-gutter", "aria-hidden": "true" });
  const box = h("div", { class: "code-editor" }, gutter, h("div", { class: "code-area" }, highlighted, textarea));
  const problemList = h("ul", { class: "problems", id: problemsId, "aria-live": "polite" });
  const element = h(
    "div",
    { class: "editor-field" },
    h("label", { for: id, class: "editor-label" }, options.label),
    options.hint ? h("p", { class: "hint", id: hintId }, options.hint) : null,
    box,
    problemList,
  );
  let errorLines = new Set<number>();

  const render = () => {
    const lines = textarea.value.split("\n");
    highlighted.replaceChildren(
      ...lines.map((line, n) => {
        const span = h("span", { class: errorLines.has(n + 1) ? "line line-error" : "line" }, ...(language === "json" ? highlightLine(line) : [line]));
        return [span, document.createTextNode("\n")];
      }).flat(),
    );
    gutter.replaceChildren(...lines.map((_, n) => h("span", { class: errorLines.has(n + 1) ? "line-error" : undefined }, String(n + 1))), h("span", null, " "));
    sync();
  };
  const sync = () => {
    highlighted.scrollTop = textarea.scrollTop;
    highlighted.scrollLeft = textarea.scrollLeft;
    gutter.scrollTop = textarea.scrollTop;
  };
  textarea.addEventListener("scroll", sync);
  textarea.addEventListener("input", () => {
    render();
    options.onInput?.();
  });
  textarea.addEventListener("keydown", (e) => {
    if (e.key !== "Enter" || e.shiftKey || e.altKey || e.ctrlKey || e.metaKey || e.isComposing) return;
    // Keeps the indentation of the line the caret is on, one level more after an opening bracket.
    const { selectionStart: start, selectionEnd: end, value } = textarea;
    const lineStart = value.lastIndexOf("\n", start - 1) + 1;
    const indent = /^[ \t]*/.exec(value.slice(lineStart, start))![0];
    const opens = /[[{]\s*$/.test(value.slice(lineStart, start));
    e.preventDefault();
    textarea.setRangeText(`\n${indent}${opens ? "  " : ""}`, start, end, "end");
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
  });

  const goToLine = (line: number) => {
    const lines = textarea.value.split("\n");
    let offset = 0;
    for (let n = 1; n < line && n <= lines.length; n++) offset += lines[n - 1]!.length + 1;
    const lineText = lines[line - 1] ?? "";
    const firstChar = offset + (lineText.length - lineText.trimStart().length);
    textarea.focus();
    textarea.setSelectionRange(firstChar, offset + lineText.length);
    // Scrolls the line into view: line height is fixed by the stylesheet.
    const lineHeight = parseFloat(getComputedStyle(textarea).lineHeight) || 20;
    textarea.scrollTop = Math.max(0, (line - 3) * lineHeight);
    sync();
  };

  render();
  return {
    element,
    textarea,
    value: () => textarea.value,
    setValue(text) {
      textarea.value = text;
      render();
    },
    setLanguage(next) {
      language = next;
      render();
    },
    setProblems(problems) {
      errorLines = new Set(problems.filter((p) => p.severity === "error" && p.line !== null).map((p) => p.line!));
      const invalid = problems.some((p) => p.severity === "error");
      box.classList.toggle("invalid", invalid);
      if (invalid) textarea.setAttribute("aria-invalid", "true");
      else textarea.removeAttribute("aria-invalid");
      problemList.replaceChildren(
        ...problems.map((p) =>
          h(
            "li",
            { class: p.severity === "warning" ? "warning" : undefined, dataset: { line: p.line === null ? "" : String(p.line) } },
            h("strong", null, p.line === null ? (p.severity === "error" ? "Error" : "Warning") : `Line ${p.line}`),
            ": ",
            p.path ? h("code", null, p.path) : null,
            p.path ? " — " : null,
            p.message,
            p.line === null ? null : h("button", { type: "button", class: "small secondary", onclick: () => goToLine(p.line!), "aria-label": `Go to line ${p.line}` }, "Go to line"),
          ),
        ),
      );
      render();
    },
    goToLine,
  };
}
