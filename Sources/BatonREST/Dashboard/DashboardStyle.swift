extension DashboardPage {
    static let css = #"""
:root { --fg: #1d2330; --muted: #6b7385; --line: #dde1ea; --bg: #f6f7fa; --ok: #1f8a4c; --warn: #b26a00; --bad: #c0392b; --accent: #2f5fd0; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: center; gap: 24px; padding: 10px 24px; background: #1d2330; color: #fff; }
header h1 { margin: 0; font-size: 20px; } header a { color: #fff; text-decoration: none; } nav a { margin-right: 14px; opacity: .85; }
main { padding: 16px 24px; max-width: 1200px; }
h2 { font-size: 16px; margin: 20px 0 8px; } h3 { font-size: 14px; margin: 18px 0 6px; }
.cards { display: flex; gap: 16px; flex-wrap: wrap; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; min-width: 300px; }
.card h2 { margin: 0 0 6px; font-size: 13px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.big { font-size: 28px; font-weight: 600; }
dl { display: grid; grid-template-columns: auto auto; gap: 2px 16px; margin: 6px 0; } dt { color: var(--muted); } dd { margin: 0; font-variant-numeric: tabular-nums; }
dl.inline { display: flex; flex-wrap: wrap; gap: 4px 18px; } dl.inline dt::after { content: ":"; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); margin-bottom: 8px; }
th, td { text-align: left; padding: 5px 10px; border-bottom: 1px solid var(--line); font-variant-numeric: tabular-nums; }
th { background: #eef0f5; font-weight: 600; font-size: 12px; color: var(--muted); }
.pill { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; background: #e6e8ee; color: var(--fg); }
.pill.leader, .pill.RUNNING, .pill.COMPLETED, .pill.live, .pill.FINISHED { background: #dff3e7; color: var(--ok); }
.pill.standby, .pill.DEPLOYING, .pill.INITIALIZING, .pill.SCHEDULED, .pill.IN_PROGRESS, .pill.RESTARTING { background: #fff1d6; color: var(--warn); }
.pill.down, .pill.FAILED, .pill.CANCELED, .pill.CANCELING, .pill.FAILING { background: #fbe0dd; color: var(--bad); }
#connection { margin-left: auto; }
#errors { background: #fbe0dd; color: var(--bad); padding: 8px 12px; border-radius: 6px; }
.timeline { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; margin-bottom: 10px; }
.bar { display: flex; height: 18px; margin: 6px 0; border-radius: 4px; overflow: hidden; background: #eef0f5; }
.bar span { display: block; height: 100%; } .bar .detect { background: #e8a33d; } .bar .reconcile { background: #2f5fd0; } .bar .checkpoint { background: #1f8a4c; }
.legend span { margin-right: 14px; } .legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px; }
.note, footer { color: var(--muted); } footer { padding: 12px 24px; font-size: 12px; }
a { color: var(--accent); }
"""#
}
