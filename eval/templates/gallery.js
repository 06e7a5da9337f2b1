/* The report's gallery: posts from gallery-data.js shown a page at a time, sortable by any model's
 * metric and filterable by model and date. Only one page of rows is ever in the DOM, so 50,000 posts
 * open as fast as 50. Every text goes in through textContent and every link is checked again here,
 * so nothing in the data can become markup or a link elsewhere than Reddit. */
(function () {
  "use strict";
  var loaded = window.colorbotGallery;
  var table = document.getElementById("gallery");
  if (!loaded || !table) { return; }
  var body = table.tBodies[0];
  var data, posts, count, models, values;
  var PERMALINK = /^\/(?:r|user)\//;
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

  function inflate(base64) {
    var bytes = Uint8Array.fromBase64 ? Uint8Array.fromBase64(base64) : bytesOf(atob(base64));
    return new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"))).arrayBuffer();
  }

  function bytesOf(binary) {
    var bytes = new Uint8Array(binary.length);
    for (var b = 0; b < binary.length; b++) { bytes[b] = binary.charCodeAt(b); }
    return bytes;
  }

  function metricValues(buffer) {
    // One Float32Array view per model and metric over the inflated bytes, NaN where missing: no
    // number is parsed, and sorting compares plain numbers. float32 keeps about 7 significant
    // digits; the page shows 3.
    var all = littleEndian() ? new Float32Array(buffer) : fromLittleEndian(buffer), byModel = {};
    data.valued.forEach(function (model, m) {
      byModel[model] = {};
      data.metrics.forEach(function (metric, k) {
        var start = (m * data.metrics.length + k) * count;
        byModel[model][metric.name] = all.subarray(start, start + count);
      });
    });
    return byModel;
  }

  function littleEndian() { return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1; }

  function fromLittleEndian(buffer) {
    var view = new DataView(buffer), out = new Float32Array(buffer.byteLength / 4);
    for (var i = 0; i < out.length; i++) { out[i] = view.getFloat32(4 * i, true); }
    return out;
  }

  var missing = null;
  function metricColumn(key) {
    var parts = key.split("|"), column = (values[parts[0]] || {})[parts[1]];
    if (column) { return column; }
    if (!missing) { missing = new Float32Array(count).fill(NaN); }
    return missing;
  }

  function fixed(column, i, width) {
    // Columns of fixed-width texts (dates, thumbnail keys) come as one string: nothing to parse per post.
    return column.substr(i * width, width);
  }

  function created(i) { return fixed(posts.created, i, data.widths.created); }

  function machine(model, i) {
    var keys = data.machines[model], key = keys ? fixed(keys, i, data.widths.key) : "";
    return key && key.charAt(0) !== "-" ? "images/" + key + ".jpg" : null;
  }

  var EXACT_KEYS = 2097152;  // 2^21 posts: a 32-bit rank times this still fits a double's 53 bits

  function ordered() {
    var order = new Array(count);
    for (var i = 0; i < count; i++) { order[i] = i; }
    if (!state.key) { return state.descending ? order.reverse() : order; }
    return count <= EXACT_KEYS ? sortedByKeys(metricColumn(state.key), order) : sortedByComparing(metricColumn(state.key), order);
  }

  function sortedByKeys(column, order) {
    // Each post becomes one number, rank × scale + index, so the browser's native numeric sort of a
    // Float64Array (many times faster than sorting with a comparator) gives the comparator's order:
    // by value, ties by index, missing last either way.
    var scale = 1, keys = new Float64Array(count), bits = new Uint32Array(column.buffer, column.byteOffset, count);
    while (scale < count) { scale *= 2; }
    for (var i = 0; i < count; i++) {
      var value = column[i], rank;
      if (value !== value) {
        rank = 0xFFFFFFFF;
      } else {
        // float32 bits → an unsigned rank in the order of the values (-0 and +0 are one value)
        rank = value === 0 ? 0x80000000 : (bits[i] & 0x80000000 ? ~bits[i] >>> 0 : (bits[i] | 0x80000000) >>> 0);
        if (state.descending) { rank = 0xFFFFFFFE - rank; }
      }
      keys[i] = rank * scale + i;
    }
    keys.sort();
    for (var j = 0; j < count; j++) { order[j] = keys[j] % scale; }
    return order;
  }

  function sortedByComparing(column, order) {
    var sign = state.descending ? -1 : 1;
    return order.sort(function (a, b) {
      var x = column[a], y = column[b];
      if (x !== x) { return (y !== y) ? a - b : 1; }  // NaN: missing numbers last either way
      if (y !== y) { return -1; }
      return (x - y) * sign || a - b;
    });
  }

  function currentFilter() {
    return { model: controls.model.value, from: controls.from.value, to: controls.to.value };
  }

  function passes(i, filter) {
    if (filter.model && !machine(filter.model, i)) { return false; }
    var date = (filter.from || filter.to) ? created(i) : "";
    return !(filter.from && date < filter.from) && !(filter.to && date > filter.to);
  }

  function update() {
    var filter = currentFilter();
    state.shown = ordered().filter(function (i) { return passes(i, filter); });
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
    if (typeof value !== "number" || value !== value) { return "–"; }
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
    var id = posts.reddit_id[i], permalink = posts.permalink[i], name;
    if (typeof permalink === "string" && PERMALINK.test(permalink)) {
      name = element("a", id);
      name.href = "https://www.reddit.com" + permalink;
    } else {
      name = document.createTextNode(id);
    }
    return figure("images/" + fixed(posts.key, i, data.widths.key) + "-original.jpg", "original of " + id,
                  [name, document.createTextNode(" · " + created(i)), element("br"),
                   document.createTextNode(posts.title[i])]);
  }

  function modelCell(model, i) {
    var cell = element("td"), thumbnail = machine(model, i);
    if (!thumbnail) { return cell; }
    var text = CAPTION.map(function (pair) {
      return pair[1] + " " + number(metricColumn(model + "|" + pair[0])[i]);
    }).join(" · ");
    cell.appendChild(figure(thumbnail, model + " colorization of " + posts.reddit_id[i], [document.createTextNode(text)]));
    return cell;
  }

  function humanCell(i) {
    var chroma = NaN;
    for (var m = 0; m < models.length && chroma !== chroma; m++) {
      if (values[models[m]] && machine(models[m], i)) { chroma = values[models[m]].chroma_human[i]; }
    }
    return figure("images/" + fixed(posts.key, i, data.widths.key) + "-human.jpg", "human colorization of " + posts.reddit_id[i],
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
    if (!passes(i, currentFilter())) {
      controls.model.value = controls.from.value = controls.to.value = "";
      state.shown = ordered();
    }
    state.page = Math.floor(state.shown.indexOf(i) / pageSize());
    render();
    var row = document.getElementById("post-" + wanted);
    row.classList.add("target");
    row.scrollIntoView();
  }

  function start(parts) {
    data = JSON.parse(new TextDecoder().decode(parts[0]));
    posts = data.posts;
    count = posts.reddit_id.length;
    models = data.models;
    values = metricValues(parts[1]);
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
  }

  if (typeof DecompressionStream !== "function") {
    controls.count.textContent = "This browser cannot read the gallery's data (it needs DecompressionStream: " +
      "Chrome 80, Firefox 113, Safari 16.4 or newer); every number is also in metrics.csv.";
    return;
  }
  Promise.all([inflate(loaded.texts), inflate(loaded.values)]).then(start, function (error) {
    controls.count.textContent = "The gallery's data could not be read (" + error + "); every number is also in metrics.csv.";
  });
})();
