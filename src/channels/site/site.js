// The residents' pages (src/channels/site.rs). Optional: every page works without it.
// - 大字: a larger base size, kept in localStorage;
// - search as you type: /v1/faq/search, shown with textContent only (never innerHTML);
// - copy the entry's link, print a tool's result.
(function () {
  'use strict';
  var KEY = 'yidi-big-text';
  var root = document.documentElement;
  function stored() {
    try { return window.localStorage.getItem(KEY) === '1'; } catch (e) { return false; }
  }
  if (stored()) root.classList.add('big');

  function bigToggle() {
    var b = document.getElementById('big-toggle');
    if (!b) return;
    b.hidden = false;
    b.setAttribute('aria-pressed', root.classList.contains('big') ? 'true' : 'false');
    b.addEventListener('click', function () {
      var on = !root.classList.contains('big');
      root.classList.toggle('big', on);
      b.setAttribute('aria-pressed', on ? 'true' : 'false');
      try { window.localStorage.setItem(KEY, on ? '1' : '0'); } catch (e) { /* private mode */ }
    });
  }

  function el(tag, text, attrs) {
    var e = document.createElement(tag);
    if (text) e.textContent = text;
    if (attrs) Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }

  function liveSearch() {
    var input = document.getElementById('q');
    var box = document.getElementById('live-results');
    if (!input || !box) return;
    var timer = null;
    var seq = 0;
    function clear() { while (box.firstChild) box.removeChild(box.firstChild); }
    function show(q, result) {
      clear();
      if (!result || !Array.isArray(result.hits)) return;
      function list(hits) {
        var ul = el('ul');
        hits.forEach(function (h) {
          var li = el('li');
          li.appendChild(el('a', h.question, { href: '/faq/' + encodeURIComponent(h.id) }));
          ul.appendChild(li);
        });
        return ul;
      }
      if (result.answered && result.hits.length) {
        box.appendChild(el('p', '最符合的回答：'));
        box.appendChild(list(result.hits.slice(0, 1)));
        if (result.hits.length > 1) {
          box.appendChild(el('p', '相关问题：'));
          box.appendChild(list(result.hits.slice(1, 4)));
        }
      } else {
        box.appendChild(el('p', '暂时没有找到可靠的回答。按“搜索”查看相关分类和咨询电话。'));
      }
    }
    function run() {
      var q = input.value.trim();
      var mine = ++seq;
      if (q.length < 2) { clear(); return; }
      fetch('/v1/faq/search?limit=4&q=' + encodeURIComponent(q), { headers: { Accept: 'application/json' } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (result) { if (mine === seq) show(q, result); })
        .catch(function () { /* offline: the form still works */ });
    }
    input.addEventListener('input', function () {
      if (timer) clearTimeout(timer);
      timer = setTimeout(run, 250);
    });
  }

  function copyLink() {
    var b = document.getElementById('copy-link');
    var status = document.getElementById('copy-status');
    if (!b || !navigator.clipboard) return;
    b.hidden = false;
    b.addEventListener('click', function () {
      var url = location.origin + location.pathname;
      navigator.clipboard.writeText(url).then(function () {
        if (status) status.textContent = '已复制：' + url;
      }, function () {
        if (status) status.textContent = '没能复制，请长按地址栏复制。';
      });
    });
  }

  // a printed result shows its folded parts (the estimate's basis)
  window.addEventListener('beforeprint', function () {
    Array.prototype.forEach.call(document.querySelectorAll('details:not([open])'), function (d) {
      d.setAttribute('open', '');
      d.setAttribute('data-opened-for-print', '');
    });
  });
  window.addEventListener('afterprint', function () {
    Array.prototype.forEach.call(document.querySelectorAll('details[data-opened-for-print]'), function (d) {
      d.removeAttribute('open');
      d.removeAttribute('data-opened-for-print');
    });
  });

  function printButton() {
    var b = document.getElementById('print');
    if (!b) return;
    b.hidden = false;
    b.addEventListener('click', function () { window.print(); });
  }

  // a field that applies only after another answer (data-show-if="slot=value") is hidden
  // while that answer is something else
  function conditionalFields() {
    var fields = document.querySelectorAll('[data-show-if]');
    if (!fields.length) return;
    function update() {
      Array.prototype.forEach.call(fields, function (f) {
        var rule = f.getAttribute('data-show-if').split('=');
        var other = document.getElementById('f-' + rule[0]);
        var show = !other || !other.value || other.value === rule[1];
        f.hidden = !show;
      });
    }
    Array.prototype.forEach.call(fields, function (f) {
      var other = document.getElementById('f-' + f.getAttribute('data-show-if').split('=')[0]);
      if (other) other.addEventListener('change', update);
    });
    update();
  }

  function pageUrl() {
    var line = document.getElementById('page-url-line');
    var out = document.getElementById('page-url');
    if (!line || !out) return;
    out.textContent = location.origin + location.pathname;
    line.hidden = false;
  }

  function start() {
    conditionalFields();
    pageUrl();
    bigToggle();
    liveSearch();
    copyLink();
    printButton();
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
