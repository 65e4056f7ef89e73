// live.js: progressive enhancement for the caddy-checkout pages. Every page
// works without it. It does two things:
//  - on an element with data-events (an SSE URL) it listens for status
//    messages ({"status":"paid",...}) and reloads the page when the status
//    differs from the element's data-status. Without EventSource it polls
//    data-status-url (JSON with the same "status" field) instead.
//  - it ticks the countdown element with data-expires (unix seconds),
//    correcting for the client's clock with data-now (the server's time).
(function () {
  'use strict';

  function watch(el) {
    var current = el.getAttribute('data-status') || '';
    var done = false;
    var source = null;

    function check(text) {
      var status;
      try {
        status = JSON.parse(text).status;
      } catch (e) {
        return;
      }
      if (done || typeof status !== 'string' || status === '' || status === current) {
        return;
      }
      done = true;
      if (source) {
        source.close();
      }
      window.location.reload();
    }

    if (window.EventSource) {
      source = new EventSource(el.getAttribute('data-events'));
      source.onmessage = function (e) { check(e.data); };
      source.addEventListener('status', function (e) { check(e.data); });
      return;
    }
    var statusURL = el.getAttribute('data-status-url');
    if (!statusURL || !window.fetch) {
      return;
    }
    (function poll() {
      if (done) {
        return;
      }
      window.fetch(statusURL, { credentials: 'same-origin', cache: 'no-store' })
        .then(function (r) { return r.ok ? r.text() : ''; })
        .then(check, function () {})
        .then(function () { window.setTimeout(poll, 5000); });
    })();
  }

  function pad(n) {
    return n < 10 ? '0' + n : String(n);
  }

  function tick(el) {
    var end = parseInt(el.getAttribute('data-expires'), 10);
    var serverNow = parseInt(el.getAttribute('data-now'), 10);
    if (!end) {
      return;
    }
    // The client's clock may be wrong; count from the server's time.
    var skew = serverNow ? serverNow * 1000 - Date.now() : 0;
    function update() {
      var left = Math.floor((end * 1000 - (Date.now() + skew)) / 1000);
      if (left <= 0) {
        el.textContent = el.getAttribute('data-expired-text') || '0:00';
        return;
      }
      if (left < 24 * 3600) { // longer deadlines keep the server's words
        var h = Math.floor(left / 3600);
        var m = Math.floor((left % 3600) / 60);
        var s = left % 60;
        el.textContent = (h ? h + ':' + pad(m) : String(m)) + ':' + pad(s);
      }
      window.setTimeout(update, 1000);
    }
    update();
  }

  function start() {
    var live = document.querySelector('[data-events]');
    if (live) {
      watch(live);
    }
    var clock = document.querySelector('[data-expires]');
    if (clock) {
      tick(clock);
    }
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
