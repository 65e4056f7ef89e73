// live.js: progressive enhancement for the caddy-checkout pages. Every page
// works without it. It does two things:
//  - on an element with data-events (an SSE URL) it listens for status
//    messages ({"status":"paid",...}) and reloads the page when the status
//    differs from the element's data-status by a forward move of the order
//    (pending → on_hold → failed/cancelled/expired → paid → refunded).
//    A stale or replayed message never reloads, so a page cannot loop;
//    reloads are also at least 5 seconds apart. Without EventSource it
//    polls data-status-url (JSON with the same "status" field) instead, as
//    it does when the server refuses the stream (too many open).
//  - it ticks the countdown element with data-expires (unix seconds),
//    correcting for the client's clock with data-now (the server's time).
//  - it shows a status message's "progress" (an on-chain payment's
//    confirmations) in the element with data-progress, and makes buttons
//    with data-copy copy their value.
(function () {
  'use strict';

  // Order states by how far along they are; states only move forward
  // (an expired order may still become paid when a late payment arrives).
  var rank = { pending: 0, on_hold: 1, failed: 2, cancelled: 2, expired: 2, paid: 3, refunded: 4 };

  function reload() {
    var key = 'checkout-reload:' + window.location.pathname;
    var last = 0;
    try {
      last = parseInt(window.sessionStorage.getItem(key), 10) || 0;
    } catch (e) {}
    var wait = Math.max(0, Math.min(last + 5000 - Date.now(), 5000));
    window.setTimeout(function () {
      try {
        window.sessionStorage.setItem(key, String(Date.now()));
      } catch (e) {}
      window.location.reload();
    }, wait);
  }

  function watch(el) {
    var current = el.getAttribute('data-status') || '';
    var done = false;
    var source = null;
    if (!rank.hasOwnProperty(current)) {
      return;
    }

    function check(text) {
      var status, msg;
      try {
        msg = JSON.parse(text);
        status = msg.status;
      } catch (e) {
        return;
      }
      var progress = document.querySelector('[data-progress]');
      if (progress && typeof msg.progress === 'string' && msg.progress) {
        progress.textContent = msg.progress;
      }
      // A declined attempt leaves the order where it was; the page is
      // reloaded so that it offers to try again.
      var declined = msg.attempt_failed === true && el.getAttribute('data-declined') !== 'true';
      if (done || ((!rank.hasOwnProperty(status) || rank[status] <= rank[current]) && !declined)) {
        return;
      }
      done = true;
      if (source) {
        source.close();
      }
      reload();
    }

    var statusURL = el.getAttribute('data-status-url');
    function poll() {
      if (done || !statusURL || !window.fetch) {
        return;
      }
      window.fetch(statusURL, { credentials: 'same-origin', cache: 'no-store' })
        .then(function (r) { return r.ok ? r.text() : ''; })
        .then(check, function () {})
        .then(function () { window.setTimeout(poll, 5000); });
    }

    if (window.EventSource) {
      source = new EventSource(el.getAttribute('data-events'));
      source.onmessage = function (e) { check(e.data); };
      source.addEventListener('status', function (e) { check(e.data); });
      // A stream the server refused (too many open) is closed for good:
      // poll the status instead.
      source.onerror = function () {
        if (source.readyState === 2 && !done) {
          poll();
        }
      };
      return;
    }
    poll();
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

  function copyButtons() {
    var buttons = document.querySelectorAll('[data-copy]');
    Array.prototype.forEach.call(buttons, function (b) {
      b.addEventListener('click', function () {
        if (navigator.clipboard && navigator.clipboard.writeText) {
          navigator.clipboard.writeText(b.getAttribute('data-copy')).then(function () {
            b.textContent = b.getAttribute('data-copied-text') || 'Copied';
          }, function () {});
        }
      });
    });
  }

  function start() {
    copyButtons();
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
