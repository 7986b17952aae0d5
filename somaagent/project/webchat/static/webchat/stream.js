/* SomaStream: one session's WebSocket, kept alive.
 *
 * Reconnects with backoff after any close, from the cursor that opts.after()
 * reports (the last event the page applied), so nothing is missed or repeated.
 * A socket that hears nothing for 45 s (the server beats every 15 s) is treated
 * as dead. Frames sent with send() stay queued until the server acknowledges
 * their ref, and are sent again after a reconnect: with an idempotency key
 * that is safe. A frame the server could not take for now (an error frame with
 * status 502/503/504: its database or Redis is away) stays queued and is sent
 * again after its retry_after (or a growing pause) while the page says so; it is
 * given up, and the error passed on, only after GIVE_UP_MS. A refused handshake
 * tells a browser nothing, so opts.probe() asks the HTTP API why (404: the
 * session is gone, stop trying).
 *
 * opts: {path, after(), onFrame(frame, sentFrameItAnswers), onStatus(text), probe() -> Promise<status>}
 */
(function (root) {
  "use strict";

  var HEARTBEAT_TIMEOUT_MS = 45000;
  var MAX_BACKOFF_MS = 10000;
  var UNREACHABLE = { 502: true, 503: true, 504: true };
  var GIVE_UP_MS = 120000;

  function SomaStream(opts) {
    this.opts = opts;
    this.ws = null;
    this.opened = false;
    this.closed = false;
    this.backoff = 500;
    this.timer = null;
    this.watchdog = null;
    this.outbox = new Map();
    this.refused = new Map(); // ref -> {since, tries, timer} of frames the server could not take yet
  }

  SomaStream.prototype.isOpen = function () {
    return !!this.ws && this.ws.readyState === WebSocket.OPEN;
  };

  SomaStream.prototype.open = function () {
    if (this.closed) return;
    this._drop();
    var self = this;
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(scheme + location.host + this.opts.path + "?after=" + this.opts.after(), ["soma.v1"]);
    this.ws = ws;
    this.opened = false;
    ws.onopen = function () {
      self.opened = true;
      self.backoff = 500;
      self.opts.onStatus("");
      self._arm();
      self.outbox.forEach(function (frame) {
        ws.send(JSON.stringify(frame));
      });
    };
    ws.onmessage = function (msg) {
      self._arm();
      var frame;
      try {
        frame = JSON.parse(msg.data);
      } catch (e) {
        return;
      }
      var sent = frame.ref != null ? self.outbox.get(frame.ref) : undefined;
      if (frame.type === "error" && sent && UNREACHABLE[frame.status] && self._later(frame)) return;
      if (frame.type === "ack" || frame.type === "error") self._settled(frame.ref);
      if (frame.type !== "heartbeat") self.opts.onFrame(frame, sent);
    };
    ws.onclose = function () {
      if (self.ws !== ws || self.closed) return;
      self.ws = null;
      clearTimeout(self.watchdog);
      if (self.opened) self._retry();
      else self._probe();
    };
  };

  /* Queue a frame until it is acknowledged; returns at once. */
  SomaStream.prototype.send = function (frame) {
    this.outbox.set(frame.ref, frame);
    if (this.isOpen()) this.ws.send(JSON.stringify(frame));
    else if (!this.ws) this.open();
  };

  /* The server could not take a queued frame now: send it again later (the same frame, so
     the same idempotency key: it never lands twice). False once it has waited GIVE_UP_MS. */
  SomaStream.prototype._later = function (frame) {
    var self = this;
    var ref = frame.ref;
    var state = this.refused.get(ref) || { since: Date.now(), tries: 0, timer: null };
    if (Date.now() - state.since > GIVE_UP_MS) return false;
    state.tries += 1;
    var seconds = Math.min(30, Math.max(frame.retry_after || 0, Math.pow(2, state.tries - 1)));
    this.refused.set(ref, state);
    this.opts.onStatus("Can't reach the server, retrying in " + seconds + " s… (your message is kept)");
    clearTimeout(state.timer);
    state.timer = setTimeout(function () {
      var queued = self.outbox.get(ref);
      // Not open: the reconnect sends everything queued.
      if (queued && self.isOpen()) self.ws.send(JSON.stringify(queued));
    }, seconds * 1000);
    return true;
  };

  SomaStream.prototype._settled = function (ref) {
    this.outbox.delete(ref);
    var state = this.refused.get(ref);
    if (!state) return;
    clearTimeout(state.timer);
    this.refused.delete(ref);
    if (!this.refused.size) this.opts.onStatus("");
  };

  /* Send now or not at all (for frames that must not be repeated later, like cancel). */
  SomaStream.prototype.sendNow = function (frame) {
    if (!this.isOpen()) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  };

  /* The network is back: do not wait out the backoff. */
  SomaStream.prototype.nudge = function () {
    if (!this.closed && !this.ws) {
      this.backoff = 500;
      this.open();
    }
  };

  SomaStream.prototype.close = function () {
    this.closed = true;
    this._drop();
  };

  SomaStream.prototype._drop = function () {
    clearTimeout(this.timer);
    clearTimeout(this.watchdog);
    if (!this.ws) return;
    var ws = this.ws;
    this.ws = null;
    ws.onclose = ws.onmessage = ws.onopen = ws.onerror = null;
    try {
      ws.close(1000);
    } catch (e) {
      /* already closed */
    }
  };

  SomaStream.prototype._arm = function () {
    var self = this;
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(function () {
      if (self.ws) self.ws.close(4000, "no heartbeat");
    }, HEARTBEAT_TIMEOUT_MS);
  };

  SomaStream.prototype._retry = function () {
    var self = this;
    this.opts.onStatus(navigator.onLine === false ? "Offline — waiting for the network…" : "Reconnecting…");
    clearTimeout(this.timer);
    this.timer = setTimeout(function () {
      self.open();
    }, this.backoff);
    this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
  };

  SomaStream.prototype._probe = function () {
    var self = this;
    this.opts
      .probe()
      .then(function (status) {
        if (self.closed) return;
        if (status === 404) {
          self.opts.onStatus("This chat no longer exists.");
          return;
        }
        self._retry();
      })
      .catch(function () {
        if (!self.closed) self._retry();
      });
  };

  if (typeof module === "object" && module.exports) module.exports = SomaStream;
  else root.SomaStream = SomaStream;
})(typeof window !== "undefined" ? window : this);
