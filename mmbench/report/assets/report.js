// mmbench report: sortable, filterable, foldable tables. Data arrives as JSON (parsed, never
// evaluated); every piece of it reaches the page through textContent, never as markup.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("mmbench-data").textContent);

  function cellValue(td) {
    if (!td) return null;
    var v = td.getAttribute("data-v");
    if (v !== null && v !== "") return Number(v);
    var text = td.textContent.trim();
    var m = /^[-+]?\d*\.?\d+(e[-+]?\d+)?/i.exec(text);
    if (m && text !== "-") return Number(m[0]);
    return text === "-" ? null : text.toLowerCase();
  }

  function compare(a, b, dir) {
    if (a === null && b === null) return 0;
    if (a === null) return 1;            // missing values always last
    if (b === null) return -1;
    if (typeof a === "number" && typeof b === "number") return dir * (a - b);
    return dir * String(a).localeCompare(String(b));
  }

  function sortBy(table, th) {
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var current = th.getAttribute("aria-sort");
    var first = th.getAttribute("data-better") === "0" || th.getAttribute("data-kind") === "text"
      ? "ascending" : "descending";
    var next = current === null ? first : (current === "ascending" ? "descending" : "ascending");
    var dir = next === "ascending" ? 1 : -1;
    var keyed = rows.map(function (row, i) { return [cellValue(row.cells[index]), i, row]; });
    keyed.sort(function (x, y) { return compare(x[0], y[0], dir) || x[1] - y[1]; });
    Array.prototype.forEach.call(th.parentNode.children, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", next);
    keyed.forEach(function (k) { body.appendChild(k[2]); });
  }

  function applyFilter(query) {
    var q = query.trim().toLowerCase();
    document.querySelectorAll("tr[data-model]").forEach(function (row) {
      var hit = !q || row.getAttribute("data-model").toLowerCase().indexOf(q) !== -1;
      row.classList.toggle("filtered", !hit);
    });
  }

  function fold(select) {
    var table = document.getElementById(select.getAttribute("data-table"));
    var keep = select.value;
    table.querySelectorAll("[data-group]").forEach(function (cell) {
      cell.classList.toggle("hidden-col", keep !== "" && cell.getAttribute("data-group") !== keep);
    });
  }

  document.querySelectorAll("table.board").forEach(function (table) {
    table.querySelectorAll("thead th").forEach(function (th) {
      var button = th.querySelector("button.sort");
      if (button) button.addEventListener("click", function () { sortBy(table, th); });
    });
  });
  document.querySelectorAll("select.fold-select").forEach(function (select) {
    select.addEventListener("change", function () { fold(select); });
    fold(select);
  });

  var filter = document.getElementById("filter");
  filter.addEventListener("input", function () { applyFilter(filter.value); });
  var chips = document.getElementById("chips");
  Object.keys(data.models).forEach(function (model) {
    var chip = document.createElement("button");
    chip.type = "button";
    chip.className = "chip";
    chip.title = "show only " + model;
    var dot = document.createElement("span");
    dot.className = "dot";
    dot.style.background = data.models[model];
    chip.appendChild(dot);
    chip.appendChild(document.createTextNode(model));
    chip.addEventListener("click", function () {
      filter.value = filter.value === model ? "" : model;
      applyFilter(filter.value);
    });
    chips.appendChild(chip);
  });
})();
