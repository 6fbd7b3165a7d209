// gen_prices.mjs - writes data/prices.tsv from the offline price table that
// ccusage 18.0.11 bundles (PREFETCHED_CLAUDE_PRICING: LiteLLM's
// model_prices_and_context_window.json, Claude models only, as of the
// ccusage release). Run once after `npm ci` here:
//   node tests/usage/gen_prices.mjs > data/prices.tsv
// The build never needs Node: the TSV is committed.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "node_modules/ccusage/dist");
const pkg = JSON.parse(readFileSync(join(here, "node_modules/ccusage/package.json"), "utf8"));
const file = (await import("node:fs")).readdirSync(dist).find((f) => /^data-loader-.*\.js$/.test(f));
const src = readFileSync(join(dist, file), "utf8");
const start = src.indexOf("const PREFETCHED_CLAUDE_PRICING = {");
const end = src.indexOf("\n};\n", start);
if (start < 0 || end < 0) throw new Error("PREFETCHED_CLAUDE_PRICING not found in " + file);
const table = Function('"use strict"; return (' + src.slice(src.indexOf("{", start), end + 2) + ");")();

const cols = [
  "input_cost_per_token",
  "output_cost_per_token",
  "cache_creation_input_token_cost",
  "cache_read_input_token_cost",
  "input_cost_per_token_above_200k_tokens",
  "output_cost_per_token_above_200k_tokens",
  "cache_creation_input_token_cost_above_200k_tokens",
  "cache_read_input_token_cost_above_200k_tokens",
];
const out = [];
out.push("# USD per token, per model: the prices ccusage " + pkg.version + " uses offline (`--offline`),");
out.push("# i.e. its bundled copy of LiteLLM's model_prices_and_context_window.json");
out.push("# (https://github.com/BerriAI/litellm), Claude models only.");
out.push("# Source: npm ccusage@" + pkg.version + " (published 2026-05-17), dist/" + file + ",");
out.push("# PREFETCHED_CLAUDE_PRICING: the prices as of that release;");
out.push("# extracted " + new Date().toISOString().slice(0, 10) + " by tests/usage/gen_prices.mjs.");
out.push("# Empty: no such price (0 for that kind; for *_above_200k: the base price applies).");
out.push("# above_200k: applies to the part of one message's count beyond 200,000 tokens.");
out.push("# fast: multiplier for messages with usage.speed \"fast\" (empty: 1).");
out.push("# <synthetic> is not in LiteLLM: Claude Code's model name for messages it");
out.push("# makes itself (no API call), which cost nothing.");
out.push(["model", "input", "output", "cache_creation", "cache_read", ...cols.slice(4).map((c) => c.replace(/_cost.*|_token_cost.*/, "").replace("_input", "") + "_above_200k"), "fast"].join("\t"));
for (const [name, p] of Object.entries(table).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
  const row = [name, ...cols.map((c) => (p[c] == null ? "" : String(p[c]))), p.provider_specific_entry?.fast == null ? "" : String(p.provider_specific_entry.fast)];
  if (/[\t\n"\\]/.test(name)) throw new Error("unexpected model name " + name);
  out.push(row.join("\t"));
}
out.push(["<synthetic>", "0", "0", "0", "0", "", "", "", "", ""].join("\t"));
process.stdout.write(out.join("\n") + "\n");
