/* SomaHttp: JSON calls to the API with the login cookie and the CSRF token. */
(function (root) {
  "use strict";

  function csrfToken() {
    var m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  /* Resolves to {status, ok, data}; a 401 (logged out) goes to the login page. */
  function api(method, url, body, headers) {
    var init = {
      method: method,
      credentials: "same-origin",
      headers: Object.assign({ Accept: "application/json" }, headers || {}),
    };
    if (method !== "GET") init.headers["X-CSRFToken"] = csrfToken();
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init).then(function (r) {
      if (r.status === 401) toLogin();
      return r.text().then(function (text) {
        var data = null;
        try {
          data = text ? JSON.parse(text) : null;
        } catch (e) {
          data = null;
        }
        var retryAfter = parseInt(r.headers.get("Retry-After") || "", 10);
        return { status: r.status, ok: r.ok, data: data, retryAfter: retryAfter > 0 ? retryAfter : 0 };
      });
    });
  }

  /* While the server cannot be reached (the network, or a 502/503/504 such as
     database_unavailable) a call is tried again, after its Retry-After or a growing pause,
     for up to `giveUpMs`; onWaiting(seconds) tells the page. The caller passes an
     Idempotency-Key, so a call that did land before its answer was lost is not done twice.
     Resolves to the last {status, ok, data}; rejects only when the network never answered. */
  var UNREACHABLE = { 502: true, 503: true, 504: true };

  function apiRetrying(method, url, body, headers, options) {
    options = options || {};
    var call = options.call || api;
    var sleep =
      options.sleep ||
      function (ms) {
        return new Promise(function (resolve) {
          setTimeout(resolve, ms);
        });
      };
    var giveUpMs = options.giveUpMs === undefined ? 120000 : options.giveUpMs;
    var waited = 0;
    var attempt = 0;

    function again(res, error) {
      attempt += 1;
      var pause = Math.min(10000, 1000 * Math.pow(2, attempt - 1));
      if (res && res.retryAfter) pause = Math.max(pause, Math.min(30000, res.retryAfter * 1000));
      if (waited + pause > giveUpMs) {
        if (error) throw error;
        return res;
      }
      waited += pause;
      if (options.onWaiting) options.onWaiting(Math.round(pause / 1000));
      return sleep(pause).then(tryOnce);
    }

    function tryOnce() {
      return call(method, url, body, headers).then(
        function (res) {
          if (!UNREACHABLE[res.status]) return res;
          return again(res, null);
        },
        function (error) {
          return again(null, error);
        }
      );
    }
    return tryOnce();
  }

  /* A multipart POST through XMLHttpRequest, whose upload reports progress (fetch cannot):
     onProgress(percent) while the body is sent. Resolves to {status, ok, data} as api() does;
     rejects only when the network failed (the server may cut a refused upload short). */
  function upload(url, form, onProgress) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.withCredentials = true;
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-CSRFToken", csrfToken());
      if (onProgress) {
        xhr.upload.addEventListener("progress", function (ev) {
          if (ev.lengthComputable && ev.total > 0) onProgress(Math.floor((100 * ev.loaded) / ev.total));
        });
      }
      xhr.addEventListener("load", function () {
        if (xhr.status === 401) toLogin();
        var data = null;
        try {
          data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
        } catch (e) {
          data = null;
        }
        resolve({ status: xhr.status, ok: xhr.status >= 200 && xhr.status < 300, data: data, retryAfter: 0 });
      });
      xhr.addEventListener("error", function () {
        reject(new Error("network error"));
      });
      xhr.addEventListener("abort", function () {
        reject(new Error("upload cancelled"));
      });
      xhr.send(form);
    });
  }

  function errorText(res) {
    if (res && res.data && res.data.error) return res.data.error.message;
    return "Something went wrong (" + (res ? res.status : "network") + ").";
  }

  function toLogin() {
    window.location.assign(SomaHttp.loginUrl + "?next=" + encodeURIComponent(window.location.pathname));
  }

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "k-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2);
  }

  var SomaHttp = {
    api: api,
    upload: upload,
    apiRetrying: apiRetrying,
    errorText: errorText,
    uuid: uuid,
    loginUrl: "/login/",
  };
  if (typeof module === "object" && module.exports) module.exports = SomaHttp;
  else root.SomaHttp = SomaHttp;
})(typeof window !== "undefined" ? window : this);
