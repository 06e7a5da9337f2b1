/* The report's gallery: posts from gallery-data.js shown a page at a time, sortable by any model's
 * metric and filterable by model and date. Only one page of rows is ever in the DOM, so 50,000 posts
 * open as fast as 50. Every text goes in through textContent and every link is checked again here,
 * so nothing in the data can become markup or a link elsewhere than Reddit. */
(function () {
  "use strict";
  var data = window.colorbotGallery;
  var table = document.getElementById("gallery");
  if (!data || !table) { return; }
  var body = table.tBodies[0];
  var posts = data.posts, count = posts.reddit_id.length, models = data.models;
  var REDDIT = /^https:\/\/www\.reddit\.com\/(?:r|user)\//;
  var CAPTION = [["score", "score"], ["uv_error", "UV"], ["delta_e_2000", "ΔE"], ["psnr", "PSNR"],
                 ["ssim", "SSIM"], ["auc", "AuC"], ["saturation_ratio", "sat. ratio"]];
  var controls = {
    sort: document.getElementById("sort-any"),
    model: document.getElementById("filter-model"),
    from: document.getElementById("filter-from"),
    to: document.getElementById("filter-to"),
    size: document.getElementById("page-size"),
    previous: document.getElementById("page-previous"),
    next: document.getElementById("page-next"),
    count: document.getElementById("gallery-count")
  };
  var state = { key: "", descending: false, page: 0, shown: [] };
  var columns = {};

  function metricColumn(key) {
    // A Float64Array per "model|metric", NaN where missing: sorting compares numbers, not objects.
    if (!columns[key]) {
      var parts = key.split("|"), values = (data.values[parts[0]] || {})[parts[1]], column = new Float64Array(count);
      for (var i = 0; i < count; i++) {
        var v = values ? values[i] : null;
        column[i] = (typeof v === "number") ? v : NaN;
      }
      columns[key] = column;
    }
    return columns[key];
  }

  function ordered() {
    var order = new Array(count);
    for (var i = 0; i < count; i++) { order[i] = i; }
    if (!state.key) { return state.descending ? order.reverse() : order; }
    var column = metricColumn(state.key), sign = state.descending ? -1 : 1;
    order.sort(function (a, b) {
      var x = column[a], y = column[b];
      if (x !== x) { return (y !== y) ? a - b : 1; }  // NaN: missing numbers last either way
      if (y !== y) { return -1; }
      return (x - y) * sign || a - b;
    });
    return order;
  }

  function passes(i) {
    var model = controls.model.value, from = controls.from.value, to = controls.to.value, created = posts.created[i];
    if (model && !(data.machines[model] && data.machines[model][i])) { return false; }
    return !(from && created < from) && !(to && created > to);
  }

  function update() {
    state.shown = ordered().filter(passes);
    state.page = Math.min(state.page, Math.max(0, Math.ceil(state.shown.length / pageSize()) - 1));
    render();
  }

  function pageSize() { return Number(controls.size.value) || 50; }

  function element(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined) { node.textContent = text; }
    if (className) { node.className = className; }
    return node;
  }

  function number(value) {
    if (typeof value !== "number") { return "–"; }
    return Math.abs(value) < 1000 ? String(Number(value.toPrecision(3))) : value.toFixed(0);
  }

  function figure(src, alt, captionNodes) {
    var holder = element("figure"), image = element("img"), caption = element("figcaption");
    image.src = src;
    image.alt = alt;
    image.loading = "lazy";
    image.decoding = "async";
    holder.appendChild(image);
    captionNodes.forEach(function (node) { caption.appendChild(node); });
    holder.appendChild(caption);
    return holder;
  }

  function postCell(i) {
    var id = posts.reddit_id[i], link = posts.link[i], name;
    if (typeof link === "string" && REDDIT.test(link)) {
      name = element("a", id);
      name.href = link;
    } else {
      name = document.createTextNode(id);
    }
    return figure(posts.original[i], "original of " + id,
                  [name, document.createTextNode(" · " + posts.created[i]), element("br"),
                   document.createTextNode(posts.title[i])]);
  }

  function modelCell(model, i) {
    var cell = element("td"), thumbnail = data.machines[model] && data.machines[model][i];
    if (!thumbnail) { return cell; }
    var values = data.values[model] || {};
    var text = CAPTION.map(function (pair) {
      return pair[1] + " " + number(values[pair[0]] ? values[pair[0]][i] : null);
    }).join(" · ");
    cell.appendChild(figure(thumbnail, model + " colorization of " + posts.reddit_id[i], [document.createTextNode(text)]));
    return cell;
  }

  function humanCell(i) {
    var chroma = null;
    for (var m = 0; m < models.length && chroma === null; m++) {
      var values = data.values[models[m]];
      if (values && data.machines[models[m]] && data.machines[models[m]][i]) { chroma = values.chroma_human[i]; }
    }
    return figure(posts.human[i], "human colorization of " + posts.reddit_id[i],
                  [document.createTextNode("human chroma " + number(chroma))]);
  }

  function render() {
    var size = pageSize(), start = state.page * size, rows = document.createDocumentFragment();
    var page = state.shown.slice(start, start + size);
    page.forEach(function (i) {
      var row = element("tr"), first = element("td"), last = element("td");
      row.id = "post-" + posts.reddit_id[i];
      first.appendChild(postCell(i));
      row.appendChild(first);
      models.forEach(function (model) { row.appendChild(modelCell(model, i)); });
      last.appendChild(humanCell(i));
      row.appendChild(last);
      rows.appendChild(row);
    });
    body.replaceChildren(rows);
    var pages = Math.max(1, Math.ceil(state.shown.length / size));
    controls.count.textContent = (state.shown.length === count ? count + " posts" : state.shown.length + " of " + count + " posts") +
      " · page " + (state.page + 1) + " of " + pages;
    table.dataset.shown = String(state.shown.length);
    controls.previous.disabled = state.page === 0;
    controls.next.disabled = state.page >= pages - 1;
    document.querySelectorAll("button.sort").forEach(function (button) {
      button.classList.toggle("active", button.dataset.key === state.key);
    });
  }

  function sortBy(key, descending) {
    state.key = key;
    state.descending = descending;
    state.page = 0;
    controls.sort.value = key;
    update();
  }

  function reveal() {
    // A link to #post-ID (the ten best and worst) opens the page that holds the post.
    var wanted = decodeURIComponent(location.hash.replace(/^#post-/, ""));
    var i = posts.reddit_id.indexOf(wanted);
    if (!location.hash.startsWith("#post-") || i < 0) { return; }
    if (!passes(i)) {
      controls.model.value = controls.from.value = controls.to.value = "";
      state.shown = ordered();
    }
    state.page = Math.floor(state.shown.indexOf(i) / pageSize());
    render();
    var row = document.getElementById("post-" + wanted);
    row.classList.add("target");
    row.scrollIntoView();
  }

  document.querySelectorAll("button.sort").forEach(function (button) {
    button.addEventListener("click", function () {
      var key = button.dataset.key;
      sortBy(key, state.key === key ? !state.descending : false);
    });
  });
  controls.sort.addEventListener("change", function () { sortBy(controls.sort.value, false); });
  [controls.model, controls.from, controls.to, controls.size].forEach(function (control) {
    control.addEventListener("change", function () { state.page = 0; update(); });
  });
  controls.previous.addEventListener("click", function () { state.page -= 1; render(); });
  controls.next.addEventListener("click", function () { state.page += 1; render(); });
  window.addEventListener("hashchange", reveal);
  update();
  reveal();
  table.dataset.ready = String(Math.round(performance.now()));
})();
