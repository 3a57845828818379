// Builds dist/: index.html, app.js, app.css. Deterministic: no hashes, no
// source maps, no timestamps; the same sources give the same bytes.
import { build } from "esbuild";
import { mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });

const common = {
  bundle: true,
  minify: true,
  sourcemap: false,
  legalComments: "none",
  charset: "utf8",
  logLevel: "warning",
  absWorkingDir: root,
};
await build({
  ...common,
  entryPoints: ["src/main.ts"],
  outfile: join(dist, "app.js"),
  format: "iife",
  target: ["es2022", "chrome110", "firefox110", "safari16"],
  platform: "browser",
});
await build({ ...common, entryPoints: ["src/app.css"], outfile: join(dist, "app.css"), target: ["chrome110", "firefox110", "safari16"] });

// index.html as written (it is small), with blank lines at the ends trimmed.
const html = (await readFile(join(root, "src/index.html"), "utf8")).trim() + "\n";
await writeFile(join(dist, "index.html"), html);

const names = (await readdir(dist)).sort();
const want = ["app.css", "app.js", "index.html"];
if (JSON.stringify(names) !== JSON.stringify(want)) {
  console.error(`dist/ holds ${names.join(", ")}, not ${want.join(", ")}`);
  process.exit(1);
}
