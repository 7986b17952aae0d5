/* SomaMarkdownInline: the inline half of SomaMarkdown (emphasis, code spans, links, autolinks).
 * Produces the same pure node tree as markdown.js; see there for the safety rules. Every scan is
 * linear or bounded (indexOf from the current position, caps on label and URL length).
 */
(function (root) {
  "use strict";

  var MAX_DEPTH = 8;
  var MAX_LABEL = 1000;
  var MAX_URL = 2048;
  var PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

  function el(tag, children, attrs) {
    return { tag: tag, children: children || [], attrs: attrs || {} };
  }
  function txt(value) {
    return { text: String(value) };
  }

  /* ---------- URLs ---------- */

  function safeHref(raw) {
    var url = String(raw == null ? "" : raw)
      .replace(/[\u0000-\u001f\u007f-\u009f]/g, "")
      .trim()
      .replace(/ /g, "%20");
    if (!url || url.length > MAX_URL) return null;
    if (/^https?:\/\/[^/]/i.test(url) || /^mailto:[^\s]/i.test(url)) return url;
    return null;
  }

  /* ---------- inline ---------- */

  function isAlnum(ch) {
    return !!ch && /[A-Za-z0-9\u00c0-\uffff]/.test(ch);
  }

  function parseLinkAt(text, i) {
    // text[i] === "[" ; returns {label, href, title, end} or null
    var level = 0;
    var j = i;
    var limit = Math.min(text.length, i + MAX_LABEL);
    for (; j < limit; j++) {
      var c = text[j];
      if (c === "\\") {
        j++;
        continue;
      }
      if (c === "[") level++;
      else if (c === "]") {
        level--;
        if (level === 0) break;
      }
    }
    if (j >= limit || text[j] !== "]" || text[j + 1] !== "(") return null;
    var label = text.slice(i + 1, j);
    var k = j + 2;
    while (text[k] === " ") k++;
    var urlStart = k;
    var depth = 0;
    var urlLimit = Math.min(text.length, k + MAX_URL);
    if (text[k] === "<") {
      var close = text.indexOf(">", k);
      if (close < 0 || close > urlLimit) return null;
      var href = text.slice(k + 1, close);
      k = close + 1;
    } else {
      for (; k < urlLimit; k++) {
        var ch = text[k];
        if (ch === "(") depth++;
        else if (ch === ")") {
          if (depth === 0) break;
          depth--;
        } else if (ch === " " || ch === "\n") break;
      }
      href = text.slice(urlStart, k);
    }
    while (text[k] === " ") k++;
    var title = "";
    if (text[k] === '"' || text[k] === "'") {
      var q = text[k];
      var tclose = text.indexOf(q, k + 1);
      if (tclose < 0 || tclose > k + MAX_LABEL) return null;
      title = text.slice(k + 1, tclose);
      k = tclose + 1;
      while (text[k] === " ") k++;
    }
    if (text[k] !== ")") return null;
    return { label: label, href: href, title: title, end: k + 1 };
  }

  function linkNode(children, href, title) {
    var safe = safeHref(href);
    if (!safe) return el("span", children, { class: "md-unsafe-link" });
    var attrs = { href: safe };
    if (title) attrs.title = title.slice(0, 200);
    return el("a", children, attrs);
  }

  var DELIMS = { "**": "strong", __: "strong", "~~": "del", "*": "em", _: "em" };

  function inline(text, depth) {
    var out = [];
    var buf = "";
    var missing = {};
    function flush() {
      if (buf) {
        out.push(txt(buf));
        buf = "";
      }
    }
    var i = 0;
    while (i < text.length) {
      var c = text[i];
      if (c === "\\" && i + 1 < text.length && PUNCT.indexOf(text[i + 1]) >= 0) {
        buf += text[i + 1];
        i += 2;
        continue;
      }
      if (c === "\n") {
        flush();
        out.push(el("br"));
        i++;
        continue;
      }
      if (c === "`") {
        var n = 1;
        while (text[i + n] === "`") n++;
        var ticks = text.slice(i, i + n);
        var from = i + n;
        var close = -1;
        if (!missing[ticks]) {
          while (true) {
            var at = text.indexOf(ticks, from);
            if (at < 0) {
              missing[ticks] = true;
              break;
            }
            var runEnd = at + n;
            while (text[runEnd] === "`") runEnd++;
            if (runEnd - at === n) {
              close = at;
              break;
            }
            from = runEnd;
          }
        }
        if (close < 0) {
          buf += ticks;
          i += n;
          continue;
        }
        var codeText = text.slice(i + n, close).replace(/\n/g, " ");
        if (/^ .*[^ ].* $/.test(codeText)) codeText = codeText.slice(1, -1);
        flush();
        out.push(el("code", [txt(codeText)]));
        i = close + n;
        continue;
      }
      if ((c === "[" || (c === "!" && text[i + 1] === "[")) && depth < MAX_DEPTH) {
        var image = c === "!";
        var link = parseLinkAt(text, image ? i + 1 : i);
        if (link) {
          flush();
          var kids = image ? [txt(link.label || "image")] : inline(link.label, depth + 1);
          out.push(linkNode(kids, link.href, link.title));
          i = link.end;
          continue;
        }
      }
      if (c === "<") {
        var auto = /^<((?:https?:\/\/|mailto:)[^\s<>]{1,2048})>/i.exec(text.slice(i, i + 2060));
        if (auto) {
          flush();
          out.push(linkNode([txt(auto[1])], auto[1], ""));
          i += auto[0].length;
          continue;
        }
      }
      if ((c === "h" || c === "H") && !isAlnum(text[i - 1]) && /^https?:\/\//i.test(text.slice(i, i + 8))) {
        var bare = /^https?:\/\/[^\s<>"'`]{1,2048}/i.exec(text.slice(i, i + 2060));
        if (bare) {
          var url = bare[0];
          while (/[.,;:!?*_~]$/.test(url) || (/\)$/.test(url) && count(url, "(") < count(url, ")"))) {
            url = url.slice(0, -1);
          }
          if (url.length > 8) {
            flush();
            out.push(linkNode([txt(url)], url, ""));
            i += url.length;
            continue;
          }
        }
      }
      if ((c === "*" || c === "_" || c === "~") && depth < MAX_DEPTH) {
        var two = text.slice(i, i + 2);
        var delim = DELIMS[two] && two[0] === two[1] ? two : c === "~" ? "" : c;
        if (delim && !(c === "_" && isAlnum(text[i - 1])) && !missing[delim]) {
          var startInner = i + delim.length;
          var end = text.indexOf(delim, startInner);
          if (delim.length === 1) {
            // skip a doubled delimiter, which belongs to strong
            while (end >= 0 && text[end + 1] === c && end + 1 < text.length) {
              end = text.indexOf(delim, end + 2);
            }
          }
          if (end < 0) missing[delim] = true;
          var inner = end > startInner ? text.slice(startInner, end) : "";
          var ok =
            inner &&
            !/^\s/.test(inner) &&
            !/\s$/.test(inner) &&
            !(c === "_" && isAlnum(text[end + delim.length]));
          if (ok) {
            flush();
            out.push(el(DELIMS[delim], inline(inner, depth + 1)));
            i = end + delim.length;
            continue;
          }
          buf += delim;
          i += delim.length;
          continue;
        }
      }
      buf += c;
      i++;
    }
    flush();
    return out;
  }

  function count(s, ch) {
    return s.split(ch).length - 1;
  }

  var api = { inline: inline, safeHref: safeHref, el: el, txt: txt, MAX_DEPTH: MAX_DEPTH };
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.SomaMarkdownInline = api;
})(typeof window !== "undefined" ? window : this);
