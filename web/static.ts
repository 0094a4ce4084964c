// The panel's stylesheet, served by the panel itself at /static/panel.css (no CDN, no inline style: the CSP allows
// only 'self'). Kept in a module so the build needs no copy step.
export const PANEL_CSS = `
:root { --fg: #1d2433; --muted: #5b6475; --line: #d9dee8; --bg: #f6f7fb; --card: #fff; --accent: #2f5bea;
  --ok: #1f7a4d; --warn: #a45a00; --err: #b3261e; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg); line-height: 1.45; }
header.top { display: flex; flex-wrap: wrap; align-items: center; gap: 1rem; padding: .6rem 1.2rem; background: var(--card);
  border-bottom: 1px solid var(--line); }
.brand { font-weight: 700; font-size: 1.2rem; color: var(--accent); text-decoration: none; }
nav { display: flex; flex-wrap: wrap; gap: .2rem; }
nav a { padding: .35rem .7rem; border-radius: 6px; color: var(--fg); text-decoration: none; }
nav a.active, nav a:hover { background: #e8edfc; color: var(--accent); }
.tools { margin-left: auto; display: flex; align-items: center; gap: 1rem; flex-wrap: wrap; }
.langs a, .langs strong { margin-left: .5rem; }
.logout { display: flex; align-items: center; gap: .5rem; margin: 0; }
.who { color: var(--muted); font-size: .9rem; }
main { max-width: 1000px; margin: 0 auto; padding: 1rem 1.2rem 3rem; }
h1 { font-size: 1.5rem; margin: .6rem 0 1rem; }
h2 { font-size: 1.15rem; margin: 1.6rem 0 .6rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 1rem 1.2rem; margin-bottom: 1rem; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: .8rem; margin: .8rem 0; }
.figure { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: .7rem .9rem; }
.figure .label { color: var(--muted); font-size: .85rem; }
.figure .value { font-size: 1.35rem; font-weight: 600; }
.bar { width: 100%; height: 18px; display: block; }
.bar .track { fill: #e6e9f0; } .bar .fill { fill: var(--accent); } .bar .fill.warn { fill: var(--warn); } .bar .fill.full { fill: var(--err); }
.chart { width: 100%; height: auto; display: block; }
.chart .day { fill: var(--accent); } .chart .axis { stroke: var(--line); } .chart text { font-size: 10px; fill: var(--muted); }
.notice { padding: .6rem .9rem; border-radius: 8px; border: 1px solid var(--line); background: var(--card); }
.notice-warn { border-color: #f0c27a; background: #fff6e8; color: var(--warn); }
.notice-error { border-color: #f0a9a4; background: #fdeeee; color: var(--err); }
.notice-ok { border-color: #9fd4b8; background: #eaf7f0; color: var(--ok); }
table { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); border-radius: 10px; }
th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; font-size: .92rem; }
th { color: var(--muted); font-weight: 600; }
td.reply { font-family: ui-monospace, monospace; font-size: .82rem; word-break: break-word; }
.status-delivered { color: var(--ok); } .status-deferred { color: var(--warn); } .status-bounced { color: var(--err); }
dl.settings { display: grid; grid-template-columns: max-content 1fr; gap: .5rem 1.2rem; margin: 0; }
dl.settings dt { color: var(--muted); } dl.settings dd { margin: 0; font-weight: 600; }
code, .secret { font-family: ui-monospace, monospace; background: #eef1f7; padding: .1rem .35rem; border-radius: 4px; }
form.stack { display: grid; gap: .7rem; max-width: 420px; }
form.stack label { display: grid; gap: .25rem; }
input[type=text], input[type=password], input[type=email], select { padding: .5rem .6rem; border: 1px solid var(--line); border-radius: 6px; font: inherit; }
button { padding: .5rem .9rem; border: 0; border-radius: 6px; background: var(--accent); color: #fff; font: inherit; cursor: pointer; }
.logout button { background: transparent; color: var(--accent); border: 1px solid var(--line); padding: .3rem .7rem; }
.filters { display: flex; gap: .5rem; align-items: center; margin-bottom: .6rem; }
.muted { color: var(--muted); }
a.button { display: inline-block; padding: .5rem .9rem; border-radius: 6px; background: var(--accent); color: #fff; text-decoration: none; }
.badge { font-size: .8rem; padding: .1rem .5rem; border-radius: 999px; border: 1px solid var(--line); vertical-align: middle; }
.badge-verified { color: var(--ok); border-color: #9fd4b8; } .badge-pending { color: var(--warn); border-color: #f0c27a; }
table.records code.value { word-break: break-all; }
tr.state-right strong { color: var(--ok); } tr.state-missing strong, tr.state-wrong strong { color: var(--err); } tr.state-unknown strong { color: var(--warn); }
`
