/* Pombo console: confirmations, and the overview's live charts (inline SVG, no library).
   Data is written with textContent/setAttribute only: customer names are not trusted. */
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  });

  var live = document.getElementById("live");
  if (!live) return;

  var NS = "http://www.w3.org/2000/svg";
  var EVERY = 5000;
  var SERIES = { ok: "#2e7d32", wr: "#e0a100", "300": "#c62828", rother: "#8d8d8d" };
  var CODES = ["#6d28d9", "#0e7490", "#b45309", "#be185d", "#475569"];
  var STATES = { delivered: "#2e7d32", sent: "#0ea5e9", pending: "#9cc3f5", undelivered: "#f97316",
                 expired: "#a16207", rejected: "#c62828", unknown: "#a3a3a3" };
  var LINES = ["#2563eb", "#db2777", "#059669", "#d97706", "#7c3aed", "#0891b2"];

  function svg(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(node);
    return node;
  }
  function html(name, text, parent, cls) {
    var node = document.createElement(name);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    if (parent) parent.appendChild(node);
    return node;
  }
  function clear(id) { var n = document.getElementById(id); while (n.firstChild) n.removeChild(n.firstChild); return n; }
  function niceMax(v) {
    if (!(v > 0)) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(v))), n = v / p;
    return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10) * p;
  }
  function codeColor(key, i) { return SERIES[key] || CODES[i % CODES.length]; }
  function legend(id, items) {
    var ul = clear(id);
    items.forEach(function (it) {
      var li = html("li", null, ul);
      var sw = html("span", null, li, "swatch");
      sw.style.background = it.color;
      html("span", it.label, li);
    });
  }
  function table(id, head, rows) {
    var wrap = clear(id), tbl = html("table", null, wrap), tr = html("tr", null, html("thead", null, tbl));
    head.forEach(function (h) { html("th", h, tr).setAttribute("scope", "col"); });
    var body = html("tbody", null, tbl);
    rows.forEach(function (r) { var row = html("tr", null, body); r.forEach(function (c) { html("td", c, row); }); });
  }
  function frame(id, w, h) {
    var box = clear(id);
    return svg("svg", { viewBox: "0 0 " + w + " " + h, width: "100%", preserveAspectRatio: "xMidYMid meet",
                        "aria-hidden": "true", focusable: "false" }, box);
  }
  function axis(s, x0, x1, y0, y1, max, unit) {
    [0, 0.5, 1].forEach(function (f) {
      var y = y0 - (y0 - y1) * f;
      svg("line", { x1: x0, x2: x1, y1: y, y2: y, "class": "grid" }, s);
      svg("text", { x: x0 - 6, y: y + 4, "text-anchor": "end", "class": "tick" }, s).textContent =
        (unit || fmtCount)(max * f);
    });
  }
  function short(text, n) { return text.length > n ? text.slice(0, n - 1) + "…" : text; }
  function fmtCount(v) { return v % 1 ? v.toFixed(1) : String(v); }
  function fmtSeconds(v) {
    if (v === 0) return "0";
    return v < 1 ? +(v * 1000).toPrecision(3) + " ms" : +v.toPrecision(3) + " s";
  }
  function xLabels(s, labels, x0, step, y) {
    labels.forEach(function (l, i) {
      if (i % 10 === 0 || i === labels.length - 1)
        svg("text", { x: x0 + step * (i + 0.5), y: y, "text-anchor": i === labels.length - 1 ? "end" : "middle",
                      "class": "tick" }, s).textContent = l;
    });
  }

  function drawSends(d) {
    var W = 960, H = 240, L = 44, R = 10, T = 10, B = 26, n = d.labels.length, step = (W - L - R) / n;
    var totals = d.labels.map(function (_, i) { return d.sends.reduce(function (a, s) { return a + s.values[i]; }, 0); });
    var max = niceMax(Math.max.apply(null, totals)), s = frame("chart-sends", W, H);
    axis(s, L, W - R, H - B, T, max);
    d.labels.forEach(function (label, i) {
      var y = H - B, g = svg("g", {}, s), parts = [label];
      d.sends.forEach(function (series, k) {
        var v = series.values[i];
        if (!v) return;
        var h = (H - B - T) * v / max;
        y -= h;
        svg("rect", { x: L + step * i + 1, y: y, width: Math.max(step - 2, 1), height: h,
                      fill: codeColor(series.key, k - 3) }, g);
        parts.push(series.label + ": " + v);
      });
      svg("title", {}, g).textContent = parts.join("\n");
    });
    xLabels(s, d.labels, L, step, H - 8);
    var chart = document.getElementById("chart-sends"), sum = totals.reduce(function (a, b) { return a + b; }, 0);
    chart.setAttribute("data-total", String(sum));
    d.sends.forEach(function (series) {
      chart.setAttribute("data-" + series.key, String(series.values.reduce(function (a, b) { return a + b; }, 0)));
    });
    legend("legend-sends", d.sends.map(function (x, k) { return { label: x.label, color: codeColor(x.key, k - 3) }; }));
    table("table-sends", [d.text.minute].concat(d.sends.map(function (x) { return x.label; })),
          d.labels.map(function (l, i) { return [l].concat(d.sends.map(function (x) { return x.values[i]; })); })
                  .filter(function (r) { return r.slice(1).some(function (v) { return v; }); }));
  }

  function empty(id, d) { var box = clear(id); html("p", d.text.no_data, box, "empty"); }

  function drawDelivery(d) {
    if (!d.delivery.length) { empty("chart-delivery", d); clear("legend-delivery"); clear("table-delivery"); return; }
    var W = 460, row = 34, L = 96, R = 8, H = d.delivery.length * row + 8, s = frame("chart-delivery", W, H);
    d.delivery.forEach(function (c, i) {
      var y = 4 + i * row, x = L, g = svg("g", {}, s);
      svg("text", { x: L - 8, y: y + 15, "text-anchor": "end", "class": "label" }, g).textContent = c.connection;
      c.states.forEach(function (st) {
        if (!st.count) return;
        var w = (W - L - R) * st.count / c.total;
        svg("rect", { x: x, y: y, width: w, height: 20, fill: STATES[st.key] || "#999" }, g);
        x += w;
      });
      var pct = c.rate === null ? "—" : Math.round(c.rate * 100) + "%";
      svg("text", { x: L, y: y + 31, "class": "tick" }, g).textContent = d.text.delivered_rate + " " + pct + " · n=" + c.total;
      svg("title", {}, g).textContent = c.connection + "\n" + c.states.filter(function (st) { return st.count; })
        .map(function (st) { return st.label + ": " + st.count; }).join("\n");
    });
    legend("legend-delivery", d.delivery[0].states.map(function (st) { return { label: st.label, color: STATES[st.key] }; }));
    table("table-delivery", [d.text.connection, d.text.total, d.text.delivered_rate].concat(d.delivery[0].states.map(function (st) { return st.label; })),
          d.delivery.map(function (c) {
            return [c.connection, c.total, c.rate === null ? "—" : Math.round(c.rate * 100) + "%"]
              .concat(c.states.map(function (st) { return st.count; }));
          }));
  }

  function drawLatency(d) {
    if (!d.latency.length) { empty("chart-latency", d); clear("legend-latency"); clear("table-latency"); return; }
    var W = 960, H = 190, L = 58, R = 14, T = 10, B = 26, n = d.labels.length, step = (W - L - R) / n, top = 0;
    d.latency.forEach(function (c) { c.avg.forEach(function (v) { if (v !== null && v > top) top = v; }); });
    var max = niceMax(top), s = frame("chart-latency", W, H);
    axis(s, L, W - R, H - B, T, max, fmtSeconds);
    d.latency.forEach(function (c, k) {
      var color = LINES[k % LINES.length], pts = [];
      function flush() {
        if (pts.length > 1) svg("polyline", { points: pts.join(" "), fill: "none", stroke: color, "stroke-width": 2 }, s);
        pts = [];
      }
      c.avg.forEach(function (v, i) {
        if (v === null) { flush(); return; }
        var x = L + step * (i + 0.5), y = H - B - (H - B - T) * v / max;
        pts.push(x.toFixed(1) + "," + y.toFixed(1));
        var dot = svg("circle", { cx: x, cy: y, r: 2.5, fill: color }, s);
        svg("title", {}, dot).textContent = c.connection + " " + d.labels[i] + ": " + fmtSeconds(v);
      });
      flush();
    });
    xLabels(s, d.labels, L, step, H - 8);
    legend("legend-latency", d.latency.map(function (c, k) { return { label: c.connection, color: LINES[k % LINES.length] }; }));
    var rows = [];
    d.labels.forEach(function (l, i) {
      d.latency.forEach(function (c) { if (c.avg[i] !== null) rows.push([l, c.connection, c.avg[i], c.max[i]]); });
    });
    table("table-latency", [d.text.minute, d.text.connection, d.text.average + " (s)", d.text.maximum + " (s)"], rows);
  }

  function drawLow(d) {
    if (!d.low.length) { empty("chart-low", d); clear("table-low"); return; }
    var W = 460, row = 30, L = 172, R = 112, H = d.low.length * row + 6, s = frame("chart-low", W, H);
    var scale = Math.max.apply(null, d.low.map(function (c) { return Math.max(c.available, c.spend_24h, 1); }));
    d.low.forEach(function (c, i) {
      var y = 4 + i * row, g = svg("g", {}, s), a = svg("a", { href: "customers/" + c.id }, g);
      svg("text", { x: L - 8, y: y + 15, "text-anchor": "end", "class": "label link" }, a).textContent =
        short(c.name || "", 18) + " #" + c.id;
      svg("rect", { x: L, y: y + 2, width: W - L - R, height: 18, "class": "track" }, g);
      svg("rect", { x: L, y: y + 2, width: Math.max((W - L - R) * Math.max(c.available, 0) / scale, 1), height: 18,
                    fill: c.available <= 0 ? "#c62828" : "#2563eb" }, g);
      var mark = L + (W - L - R) * c.spend_24h / scale;
      if (c.spend_24h) svg("line", { x1: mark, x2: mark, y1: y, y2: y + 22, stroke: "#c62828", "stroke-width": 2 }, g);
      svg("text", { x: W - R + 8, y: y + 15, "class": "tick" }, g).textContent = c.available_text + " · " + c.hours_text;
      svg("title", {}, g).textContent = d.text.available + ": " + c.available_text + "\n" + d.text.spend_24h + ": " +
        c.spend_text + "\n" + d.text.hours_left + ": " + c.hours_text;
    });
    table("table-low", [d.text.customer, d.text.available, d.text.spend_24h, d.text.hours_left],
          d.low.map(function (c) { return [(c.name || "") + " #" + c.id, c.available_text, c.spend_text, c.hours_text]; }));
  }

  function draw(d) {
    Object.keys(d.kpi).forEach(function (k) {
      var node = document.querySelector('[data-kpi="' + (k === "waiting" ? "in_flight" : k) + '"]');
      if (node) node.textContent = d.kpi[k];
    });
    drawSends(d);
    drawDelivery(d);
    drawLatency(d);
    drawLow(d);
    document.getElementById("updated").textContent = d.updated;
    live.classList.remove("offline");
  }

  function refresh() {
    if (document.hidden) return;
    fetch(live.getAttribute("data-source"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (r.status === 401) { window.location.reload(); throw new Error("signed out"); }
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(draw)
      .catch(function () {
        live.classList.add("offline");
        document.getElementById("updated").textContent = live.getAttribute("data-offline");
      });
  }

  refresh();
  window.setInterval(refresh, EVERY);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
})();
