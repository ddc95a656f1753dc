/// The dashboard every master serves at `/`: plain HTML, CSS and JavaScript inside the binary.
/// It renders the snapshots of `GET /v1/events` (server-sent events) and reconnects to whichever
/// master it can reach when the one it listens to goes away.
enum DashboardPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Baton</title>
<link rel="stylesheet" href="/dashboard.css">
</head>
<body>
<header>
  <h1><a href="#/">Baton</a></h1>
  <nav><a href="#/">Overview</a> <a href="#/failovers">Failovers</a></nav>
  <span id="connection" class="pill down">connecting</span>
</header>
<main>
  <section id="errors" hidden></section>
  <section id="page-overview">
    <div class="cards">
      <div class="card"><h2>Leader</h2>
        <div class="big" id="leader-id">-</div>
        <dl>
          <dt>epoch</dt><dd id="leader-epoch">-</dd>
          <dt>since</dt><dd id="leader-since">-</dd>
          <dt>lease expires</dt><dd id="leader-lease">-</dd>
        </dl>
      </div>
      <div class="card"><h2>Cluster</h2>
        <dl>
          <dt>task executors</dt><dd id="overview-taskmanagers">-</dd>
          <dt>slots available / total</dt><dd id="overview-slots">-</dd>
          <dt>jobs running</dt><dd id="overview-running">-</dd>
          <dt>finished / cancelled / failed</dt><dd id="overview-ended">-</dd>
        </dl>
      </div>
    </div>
    <h2>Masters</h2>
    <table id="masters"><thead><tr><th>id</th><th>role</th><th>pid</th><th>RPC</th><th>REST</th></tr></thead><tbody></tbody></table>
    <h2>Task executors</h2>
    <table id="taskmanagers"><thead><tr><th>id</th><th>slots</th><th>free</th><th>registered epoch</th><th>data</th></tr></thead><tbody></tbody></table>
    <h2>Jobs</h2>
    <table id="jobs"><thead><tr><th>job</th><th>name</th><th>state</th><th>duration</th><th>restarts</th><th>tasks</th><th>last checkpoint</th></tr></thead><tbody></tbody></table>
  </section>
  <section id="page-job" hidden>
    <h2 id="job-title">Job</h2>
    <dl class="inline" id="job-facts"></dl>
    <h3>Vertices</h3>
    <div id="job-vertices"></div>
    <h3>Checkpoints</h3>
    <dl class="inline" id="job-checkpoint-counts"></dl>
    <table id="job-checkpoints"><thead><tr><th>id</th><th>status</th><th>savepoint</th><th>triggered</th><th>duration</th><th>size</th><th>failure</th></tr></thead><tbody></tbody></table>
    <h3>Exceptions</h3>
    <table id="job-exceptions"><thead><tr><th>time</th><th>task</th><th>attempt</th><th>location</th><th>cause</th></tr></thead><tbody></tbody></table>
  </section>
  <section id="page-failovers" hidden>
    <h2>Failover timeline</h2>
    <p class="note">Each failover of the leader: detection (the old leader's last renewal to the new term), reconciliation (the new term to every job reconciled), and the next completed checkpoint.</p>
    <div id="failovers"></div>
  </section>
</main>
<footer>served by <span id="served-by">-</span> · via <span id="endpoint">-</span></footer>
<script src="/dashboard.js"></script>
</body>
</html>
"""#
}
