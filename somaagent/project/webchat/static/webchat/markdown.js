/* SomaMarkdown: a small Markdown renderer that is safe by construction.
 *
 * tree(text)            -> [{tag, attrs, children} | {text}]   (pure data; runs in node too)
 * render(text, document) -> DocumentFragment built with createElement/createTextNode only
 * toHtml(text)           -> escaped HTML string (for tests and debugging)
 *
 * Safety: input text only ever becomes text nodes. Elements come from a fixed
 * allow-list; the only attributes are href (http:, https:, mailto: only), title,
 * class="language-x" on code and start on ol. Raw HTML in the input (<script>,
 * <img onerror=…>, <a href="javascript:…">) is shown as literal text. Images are
 * shown as links (no remote loads). Every scan is linear or bounded, so hostile
 * input cannot make it spin.
 *
 * Supported: paragraphs (single newlines are line breaks), # headings, fenced
 * code blocks (``` or ~~~ with a language), `code`, **strong**, *em*, _em_,
 * ~~strike~~, [links](url "title"), <autolinks>, bare http(s) URLs, > quotes,
 * - / * / + and 1. lists (nested by indentation), pipe tables, --- rules,
 * backslash escapes. The inline half lives in markdown-inline.js (load it first).
 */
(function (root) {
  "use strict";

  var Inline =
    typeof module === "object" && module.exports ? require("./markdown-inline.js") : root.SomaMarkdownInline;
  var inline = Inline.inline;
  var safeHref = Inline.safeHref;
  var el = Inline.el;
  var txt = Inline.txt;
  var MAX_DEPTH = Inline.MAX_DEPTH;
  var TAGS = {
    p: 1, br: 1, strong: 1, em: 1, del: 1, code: 1, pre: 1, a: 1, h3: 1, h4: 1, h5: 1, h6: 1,
    ul: 1, ol: 1, li: 1, blockquote: 1, hr: 1, table: 1, thead: 1, tbody: 1, tr: 1, th: 1, td: 1,
    span: 1,
  };

  /* ---------- blocks ---------- */

  var LIST_RE = /^( {0,3})([-*+]|\d{1,9}[.)])([ \t]+|$)/;

  function isBlank(line) {
    return /^[ \t]*$/.test(line);
  }
  function indentOf(line) {
    var n = 0;
    for (var i = 0; i < line.length; i++) {
      if (line[i] === " ") n += 1;
      else if (line[i] === "\t") n += 4 - (n % 4);
      else break;
    }
    return n;
  }
  function dedent(line, n) {
    var i = 0;
    var col = 0;
    while (i < line.length && col < n && (line[i] === " " || line[i] === "\t")) {
      col += line[i] === "\t" ? 4 - (col % 4) : 1;
      i++;
    }
    return line.slice(i);
  }
  function fenceOf(line) {
    var m = /^( {0,3})(`{3,}|~{3,})(.*)$/.exec(line);
    if (!m) return null;
    var info = m[3].trim();
    if (m[2][0] === "`" && info.indexOf("`") >= 0) return null;
    return { indent: m[1].length, marker: m[2], lang: info.split(/[ \t]/)[0] };
  }
  function isFenceClose(line, fence) {
    var m = /^ {0,3}(`{3,}|~{3,})[ \t]*$/.exec(line);
    return !!m && m[1][0] === fence.marker[0] && m[1].length >= fence.marker.length;
  }
  function isRule(line) {
    var s = line.replace(/[ \t]/g, "");
    return indentOf(line) < 4 && s.length >= 3 && /^(?:-+|\*+|_+)$/.test(s);
  }
  function isHeading(line) {
    return /^ {0,3}#{1,6}(?:[ \t]|$)/.test(line);
  }
  function isQuote(line) {
    return /^ {0,3}>/.test(line);
  }
  function startsBlock(line) {
    return !!fenceOf(line) || isHeading(line) || isRule(line) || isQuote(line) || LIST_RE.test(line);
  }

  function splitRow(line) {
    var s = line.trim();
    if (s[0] === "|") s = s.slice(1);
    if (s[s.length - 1] === "|" && s[s.length - 2] !== "\\") s = s.slice(0, -1);
    var cells = [];
    var cur = "";
    for (var i = 0; i < s.length; i++) {
      if (s[i] === "\\" && s[i + 1] === "|") {
        cur += "|";
        i++;
      } else if (s[i] === "|") {
        cells.push(cur.trim());
        cur = "";
      } else {
        cur += s[i];
      }
    }
    cells.push(cur.trim());
    return cells;
  }
  function tableAligns(line) {
    if (line.indexOf("-") < 0) return null;
    var cells = splitRow(line);
    var aligns = [];
    for (var i = 0; i < cells.length; i++) {
      if (!/^:?-+:?$/.test(cells[i])) return null;
      var left = cells[i][0] === ":";
      var right = cells[i][cells[i].length - 1] === ":";
      aligns.push(left && right ? "center" : right ? "right" : left ? "left" : "");
    }
    return aligns;
  }

  function parseBlocks(lines, depth) {
    var out = [];
    var i = 0;
    while (i < lines.length) {
      var line = lines[i];
      if (isBlank(line)) {
        i++;
        continue;
      }
      var fence = fenceOf(line);
      if (fence) {
        var body = [];
        i++;
        while (i < lines.length && !isFenceClose(lines[i], fence)) {
          body.push(dedent(lines[i], fence.indent));
          i++;
        }
        i++;
        var lang = /^[A-Za-z0-9_+-]{1,30}$/.test(fence.lang) ? fence.lang.toLowerCase() : "";
        var code = el("code", [txt(body.join("\n"))], lang ? { class: "language-" + lang } : {});
        out.push(el("pre", [code]));
        continue;
      }
      if (isHeading(line)) {
        var hm = /^ {0,3}(#{1,6})(.*)$/.exec(line);
        var htext = hm[2].trim();
        var end = htext.length;
        while (end > 0 && htext[end - 1] === "#") end--;
        if (end === 0 || htext[end - 1] === " " || htext[end - 1] === "\t") htext = htext.slice(0, end).trim();
        out.push(el("h" + Math.min(6, hm[1].length + 2), inline(htext, depth)));
        i++;
        continue;
      }
      if (isRule(line)) {
        out.push(el("hr"));
        i++;
        continue;
      }
      if (isQuote(line)) {
        var quoted = [];
        while (i < lines.length && isQuote(lines[i])) {
          quoted.push(lines[i].replace(/^ {0,3}> ?/, ""));
          i++;
        }
        out.push(el("blockquote", nested(quoted, depth)));
        continue;
      }
      if (LIST_RE.test(line)) {
        i = parseList(lines, i, depth, out);
        continue;
      }
      if (i + 1 < lines.length && line.indexOf("|") >= 0) {
        var aligns = tableAligns(lines[i + 1]);
        if (aligns) {
          i = parseTable(lines, i, aligns, depth, out);
          continue;
        }
      }
      var para = [line.trim()];
      i++;
      while (i < lines.length && !isBlank(lines[i]) && !startsBlock(lines[i])) {
        para.push(lines[i].trim());
        i++;
      }
      out.push(el("p", inline(para.join("\n"), depth)));
    }
    return out;
  }

  function nested(lines, depth) {
    if (depth >= MAX_DEPTH) return [el("p", [txt(lines.join("\n"))])];
    return parseBlocks(lines, depth + 1);
  }

  function parseList(lines, i, depth, out) {
    var first = LIST_RE.exec(lines[i]);
    var ordered = /\d/.test(first[2]);
    var items = [];
    var tight = true;
    while (i < lines.length) {
      var m = LIST_RE.exec(lines[i]);
      if (!m || /\d/.test(m[2]) !== ordered) break;
      var contentIndent = m[1].length + m[2].length + Math.max(1, Math.min(4, m[3].length));
      var item = [lines[i].slice(m[0].length)];
      i++;
      while (i < lines.length) {
        var l = lines[i];
        if (isBlank(l)) {
          var j = i + 1;
          while (j < lines.length && isBlank(lines[j])) j++;
          if (j < lines.length && indentOf(lines[j]) >= contentIndent) {
            tight = false;
            for (; i < j; i++) item.push("");
            continue;
          }
          break;
        }
        if (indentOf(l) >= contentIndent) {
          item.push(dedent(l, contentIndent));
          i++;
          continue;
        }
        if (startsBlock(l)) break;
        item.push(l.trim());
        i++;
      }
      items.push(item);
      var k = i;
      while (k < lines.length && isBlank(lines[k])) k++;
      var next = k < lines.length ? LIST_RE.exec(lines[k]) : null;
      if (!next || /\d/.test(next[2]) !== ordered) break;
      if (k > i) tight = false;
      i = k;
    }
    var children = items.map(function (item) {
      var blocks = nested(item, depth);
      if (tight) {
        // Tight lists show their paragraphs' content directly in the item.
        var flat = [];
        blocks.forEach(function (b) {
          if (b.tag === "p") flat = flat.concat(b.children);
          else flat.push(b);
        });
        blocks = flat;
      }
      return el("li", blocks);
    });
    var attrs = {};
    if (ordered) {
      var start = parseInt(first[2], 10);
      if (start !== 1 && start >= 0 && start < 1e9) attrs.start = String(start);
    }
    out.push(el(ordered ? "ol" : "ul", children, attrs));
    return i;
  }

  function parseTable(lines, i, aligns, depth, out) {
    var head = splitRow(lines[i]);
    var width = aligns.length;
    function row(cells, tag) {
      var tds = [];
      for (var c = 0; c < width; c++) {
        var attrs = aligns[c] ? { class: "md-align-" + aligns[c] } : {};
        tds.push(el(tag, inline(cells[c] || "", depth), attrs));
      }
      return el("tr", tds);
    }
    var rows = [];
    i += 2;
    while (i < lines.length && !isBlank(lines[i]) && lines[i].indexOf("|") >= 0 && !startsBlock(lines[i])) {
      rows.push(row(splitRow(lines[i]), "td"));
      i++;
    }
    out.push(el("table", [el("thead", [row(head, "th")]), el("tbody", rows)]));
    return i;
  }

  /* ---------- output ---------- */

  function tree(markdown) {
    var text = String(markdown == null ? "" : markdown).replace(/\r\n?/g, "\n").replace(/\u0000/g, "\ufffd");
    return parseBlocks(text.split("\n"), 0);
  }

  function build(node, doc) {
    if (node.text !== undefined) return doc.createTextNode(node.text);
    if (!TAGS.hasOwnProperty(node.tag)) return doc.createTextNode("");
    var e = doc.createElement(node.tag);
    var a = node.attrs || {};
    if (node.tag === "a" && a.href && safeHref(a.href)) {
      e.setAttribute("href", a.href);
      e.setAttribute("rel", "noopener noreferrer nofollow ugc");
      e.setAttribute("target", "_blank");
      if (a.title) e.setAttribute("title", a.title);
    }
    if (a.class && /^(language-[a-z0-9_+-]{1,30}|md-align-(left|right|center)|md-unsafe-link)$/.test(a.class)) {
      e.setAttribute("class", a.class);
    }
    if (node.tag === "ol" && a.start && /^\d{1,9}$/.test(a.start)) e.setAttribute("start", a.start);
    (node.children || []).forEach(function (child) {
      e.appendChild(build(child, doc));
    });
    return e;
  }

  function render(markdown, doc) {
    doc = doc || root.document;
    var frag = doc.createDocumentFragment();
    tree(markdown).forEach(function (node) {
      frag.appendChild(build(node, doc));
    });
    return frag;
  }

  function escapeHtml(s) {
    return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }
  function nodeHtml(node) {
    if (node.text !== undefined) return escapeHtml(node.text);
    if (!TAGS.hasOwnProperty(node.tag)) return "";
    var attrs = "";
    Object.keys(node.attrs || {})
      .sort()
      .forEach(function (k) {
        attrs += " " + k + '="' + escapeHtml(String(node.attrs[k])) + '"';
      });
    if (node.tag === "br" || node.tag === "hr") return "<" + node.tag + attrs + ">";
    return "<" + node.tag + attrs + ">" + node.children.map(nodeHtml).join("") + "</" + node.tag + ">";
  }
  function toHtml(markdown) {
    return tree(markdown).map(nodeHtml).join("");
  }

  var api = { tree: tree, render: render, toHtml: toHtml, safeHref: safeHref };
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.SomaMarkdown = api;
})(typeof window !== "undefined" ? window : this);