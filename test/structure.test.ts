// The layout rules STYLE.md sets, checked on the source itself: imports between src/ folders form no
// cycle, and platform/ imports no feature folder.
import { describe, expect, it } from "vitest";

const sources = import.meta.glob<string>("../src/**/*.ts", { eager: true, query: "?raw", import: "default" });

function folderImports(): Map<string, Set<string>> {
  const edges = new Map<string, Set<string>>();
  for (const [path, text] of Object.entries(sources)) {
    if (path.endsWith(".test.ts")) continue;
    const from = path.split("/")[2]!;
    if (from.endsWith(".ts")) continue; // src/index.ts assembles everything
    // "../../apps-sdk/…" leaves src/: the SDK package is a library here, not a folder of src/.
    for (const [, spec] of text.matchAll(/from "(\.\.\/(?!\.\.\/)[^"]+)"/g)) {
      const to = spec!.split("/")[1]!;
      if (to !== from) edges.set(from, (edges.get(from) ?? new Set()).add(to));
    }
  }
  return edges;
}

describe("source layout", () => {
  it("has no import cycle between src/ folders", () => {
    const edges = folderImports();
    const cycles: string[] = [];
    const walk = (node: string, path: string[]) => {
      for (const next of edges.get(node) ?? []) {
        if (path.includes(next)) cycles.push([...path.slice(path.indexOf(next)), next].join(" -> "));
        else walk(next, [...path, next]);
      }
    };
    for (const node of edges.keys()) walk(node, [node]);
    expect(cycles).toEqual([]);
    expect(edges.size).toBeGreaterThan(5);
  });

  it("keeps platform/ free of feature folders", () => {
    expect([...(folderImports().get("platform") ?? [])]).toEqual([]);
  });
});
