"""The page's inline style and script (no file or network fetch: ``report.html`` opens from disk alone)."""

CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
.status { padding: .5em .8em; border-radius: 4px; background: #eef5ee; }
.status.running { background: #fff4d6; } .status.stopped { background: #fde2e2; }
table { border-collapse: collapse; margin: .6em 0; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.sortable th { cursor: pointer; background: #f3f3f3; user-select: none; }
th[aria-sort=ascending]::after { content: " \\25B2"; } th[aria-sort=descending]::after { content: " \\25BC"; }
tr.best td { background: #e3f1ff; } tr.front td:first-child { border-left: 3px solid #c0392b; }
caption { text-align: left; color: #555; padding: .3em 0; }
figure { margin: 1em 0; } figcaption { color: #555; font-size: .9em; }
svg { max-width: 100%; height: auto; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
code { font-size: .9em; word-break: break-all; }
"""

# Click a header to sort by that column (again: the other way). Cells compare by their data-v value, as
# numbers when both are numbers; empty cells (a metric a trial lacks) stay last either way.
JS = """
(function () {
  function key(td) {
    var v = td.hasAttribute("data-v") ? td.getAttribute("data-v") : td.textContent;
    if (v === "") return null;
    var n = Number(v);
    return isNaN(n) ? v.toLowerCase() : n;
  }
  function compare(a, b) {
    if (typeof a === typeof b) return a < b ? -1 : a > b ? 1 : 0;
    return typeof a === "number" ? -1 : 1;
  }
  function sortBy(table, th, col) {
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (r, s) {
      var a = key(r.cells[col]), b = key(s.cells[col]);
      if (a === null || b === null) return (a === null) - (b === null);
      return ascending ? compare(a, b) : compare(b, a);
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("thead th").forEach(function (th, col) {
      th.addEventListener("click", function () { sortBy(table, th, col); });
    });
  });
})();
"""
