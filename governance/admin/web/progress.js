// The progress page: reads progress.json (the session cookie goes with it)
// and draws the charts and tables. The chart objects are kept on
// window.passerelleCharts for people (and the browser test) to inspect.
"use strict";
(function () {
  const colours = { whatsapp: "#25a35a", telegram: "#2a8fd6" };
  const fallback = ["#8e5bd6", "#d6862a", "#d62a5b", "#5b6b7a"];
  const label = { whatsapp: "WhatsApp", telegram: "Telegram" };
  const colourOf = (n, i) => colours[n] || fallback[i % fallback.length];

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function kpi(parent, id, value, text) {
    const box = el("div", { class: "kpi", id: "kpi-" + id });
    box.append(el("div", { class: "value" }, String(value)), el("div", { class: "label" }, text));
    parent.append(box);
  }

  function draw(r) {
    document.getElementById("week").textContent = "Week " + r.week;
    document.getElementById("generated").textContent = "as of " + r.generated_at.replace("T", " ").replace(/\..*|Z$/, "") + " UTC";

    const sum = (rows, f) => rows.reduce((a, x) => a + f(x), 0);
    const weeks = [...new Set(r.border_weeks.map((b) => b.week))];
    const thisWeek = r.border_weeks.filter((b) => b.week === r.week);
    const kpis = document.getElementById("kpis");
    kpis.replaceChildren();
    kpi(kpis, "border", sum(thisWeek, (b) => b.messages_in + b.messages_out), "border messages this week");
    kpi(kpis, "active", sum(r.active_contacts, (a) => a.contacts), "contacts active in 30 days");
    kpi(kpis, "linked", sum(r.funnel, (f) => f.reached_linked), "contacts on Matrix");
    kpi(kpis, "chats", sum(r.chats_cut_over, (c) => c.count), "chats cut over");
    kpi(kpis, "staff", sum(r.staff_logins, (l) => l.staff), "staff still holding a login");

    const charts = {};
    charts.border = new Chart(document.getElementById("chart-border"), {
      type: "line",
      data: {
        labels: weeks,
        datasets: r.networks.map((n, i) => ({
          label: label[n] || n,
          network: n,
          data: weeks.map((w) => sum(r.border_weeks.filter((b) => b.week === w && b.network === n), (b) => b.messages_in + b.messages_out)),
          borderColor: colourOf(n, i),
          backgroundColor: colourOf(n, i),
          tension: 0,
        })),
      },
      options: { responsive: true, maintainAspectRatio: false, animation: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
    charts.funnel = new Chart(document.getElementById("chart-funnel"), {
      type: "bar",
      data: {
        labels: ["Bridged", "Invited", "Linked", "Cut over"],
        datasets: [{
          label: "Contacts",
          data: [sum(r.funnel, (f) => f.total - f.retired), sum(r.funnel, (f) => f.reached_invited), sum(r.funnel, (f) => f.reached_linked), sum(r.funnel, (f) => f.cut_over)],
          backgroundColor: ["#9aa7b5", "#d6a22a", "#2c6bd6", "#25a35a"],
        }],
      },
      options: { indexAxis: "y", responsive: true, maintainAspectRatio: false, animation: false, plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
    charts.departments = new Chart(document.getElementById("chart-departments"), {
      type: "bar",
      data: {
        labels: r.departments.map((d) => d.department),
        datasets: [{ label: "% linked or beyond", data: r.departments.map((d) => d.percent_linked), backgroundColor: "#2c6bd6" }],
      },
      options: { responsive: true, maintainAspectRatio: false, animation: false, plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, max: 100 } } },
    });
    window.passerelleCharts = charts;

    const tables = document.getElementById("tables");
    tables.replaceChildren();
    for (const t of r.tables) {
      const box = el("div", { class: "table", id: "table-" + t.name });
      const exp = el("span", { class: "exports" });
      for (const f of ["csv", "json"]) {
        exp.append(el("a", { href: "progress/export?table=" + encodeURIComponent(t.name) + "&format=" + f, download: "" }, f.toUpperCase()));
      }
      box.append(exp, el("h2", {}, t.title));
      const table = el("table");
      const head = el("tr");
      const numeric = (v) => /^-?[0-9.]+$/.test(v);
      t.header.forEach((h, i) => {
        const num = t.rows.length > 0 && t.rows.every((row) => numeric(row[i]));
        head.append(el("th", num ? { scope: "col", class: "num" } : { scope: "col" }, h));
      });
      table.append(el("thead"), el("tbody"));
      table.tHead.append(head);
      for (const row of t.rows) {
        const tr = el("tr");
        row.forEach((v) => tr.append(el("td", numeric(v) ? { class: "num" } : {}, v)));
        table.tBodies[0].append(tr);
      }
      if (t.rows.length === 0) {
        const tr = el("tr");
        tr.append(el("td", { colspan: String(t.header.length) }, "nothing yet"));
        table.tBodies[0].append(tr);
      }
      box.append(table);
      tables.append(box);
    }
    document.body.dataset.ready = "true";
  }

  async function load() {
    try {
      const resp = await fetch("progress.json", { credentials: "same-origin", cache: "no-store" });
      if (!resp.ok) throw new Error("the figures could not be loaded (HTTP " + resp.status + ")");
      draw(await resp.json());
    } catch (err) {
      const e = document.getElementById("error");
      e.textContent = String(err.message || err);
      e.hidden = false;
      document.body.dataset.ready = "error";
    }
  }
  document.addEventListener("DOMContentLoaded", load);
})();
