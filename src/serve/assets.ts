/** The page's style sheet: shipped inside the bundle as a string (no network, no file to find). */
export const CSS = `
:root { color-scheme: light dark; --fg: #1d232b; --muted: #66707c; --bg: #fbfbfa; --line: #dde1e5; --accent: #2f6f9f; --warn: #a24b00; --bad: #b3261e; --ok: #2e7d32; }
@media (prefers-color-scheme: dark) { :root { --fg: #e4e6e9; --muted: #9aa3ad; --bg: #16191d; --line: #2c3238; --accent: #7db4e0; --warn: #f0a35e; --bad: #f28b82; --ok: #81c995; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 1.5em; align-items: center; padding: .6em 1.2em; border-bottom: 1px solid var(--line); flex-wrap: wrap; }
header .brand { font-weight: 600; color: var(--fg); text-decoration: none; }
header form { margin-left: auto; display: flex; gap: .4em; }
main { padding: 1em 1.2em 3em; max-width: 1200px; }
h1 { font-size: 1.3em; margin: .2em 0 .6em; } h2 { font-size: 1.1em; margin: 1.4em 0 .5em; }
a { color: var(--accent); text-decoration: none; } a:hover { text-decoration: underline; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: .3em .6em; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { color: var(--muted); font-weight: 500; font-size: .9em; }
td.num, th.num { text-align: right; }
td.name { white-space: normal; word-break: break-all; }
.mono, td.mode { font-family: ui-monospace, "SF Mono", Menlo, Consolas, monospace; font-size: .92em; }
.muted { color: var(--muted); }
.crumbs { margin: .2em 0 1em; word-break: break-all; } .crumbs a, .crumbs span { margin-right: .3em; }
.warn { border-left: 4px solid var(--warn); padding: .5em .8em; margin: .6em 0; background: color-mix(in srgb, var(--warn) 10%, transparent); }
.bad { border-left-color: var(--bad); background: color-mix(in srgb, var(--bad) 10%, transparent); }
.pager { margin: .8em 0; display: flex; gap: 1em; align-items: center; }
.chart { margin: .5em 0 1em; max-width: 100%; height: auto; }
.chart .size { fill: none; stroke: var(--accent); stroke-width: 2; }
.chart .new { fill: var(--warn); opacity: .7; }
.chart text { fill: var(--muted); font-size: 11px; }
.chart .axis { stroke: var(--line); }
.preview { width: 100%; height: 60vh; border: 1px solid var(--line); background: #fff; }
.preview-img { max-width: 100%; max-height: 70vh; border: 1px solid var(--line); }
.actions { display: flex; gap: 1em; margin: .6em 0 1em; flex-wrap: wrap; }
.btn { display: inline-block; padding: .3em .8em; border: 1px solid var(--line); border-radius: 4px; }
input, select, button { font: inherit; padding: .25em .5em; }
.tag-add { color: var(--ok); } .tag-rm { color: var(--bad); } .tag-mod { color: var(--warn); }
`;
