// The book's own script: typeset math with the KaTeX shipped in _static/katex,
// and let keyboard users reach every block that scrolls sideways.
(function () {
  'use strict';

  var DELIMITERS = {DIV: ['\\[', '\\]'], SPAN: ['\\(', '\\)']};
  // The blocks that scroll sideways when too wide: code, outputs, equations.
  var SCROLLERS = '.page-content pre, div.math > .math-body';

  function typesetMath() {
    document.querySelectorAll('span.math, div.math').forEach(function (element) {
      var source = Array.prototype.find.call(element.childNodes, function (node) {
        return node.nodeType === Node.TEXT_NODE && node.nodeValue.trim();
      });
      if (!source) {
        return;
      }
      var tex = source.nodeValue.trim();
      var delimiters = DELIMITERS[element.tagName];
      if (tex.startsWith(delimiters[0]) && tex.endsWith(delimiters[1])) {
        tex = tex.slice(2, -2);
      }
      var display = element.tagName === 'DIV';
      var typeset = document.createElement(display ? 'div' : 'span');
      if (display) {
        typeset.className = 'math-body';
      }
      try {
        window.katex.render(tex, typeset, {displayMode: display, throwOnError: true});
        source.replaceWith(typeset);
      } catch (error) {
        console.error('KaTeX could not typeset "' + tex + '": ' + error.message);
      }
    });
  }

  function letKeyboardScroll() {
    document.querySelectorAll(SCROLLERS).forEach(function (element) {
      if (element.scrollWidth > element.clientWidth) {
        element.tabIndex = 0;
      } else {
        element.removeAttribute('tabindex');
      }
    });
  }

  document.addEventListener('DOMContentLoaded', function () {
    if (window.katex) {
      typesetMath();
    }
    letKeyboardScroll();
    // Widths change as fonts load and as the layout settles or resizes.
    document.fonts.addEventListener('loadingdone', letKeyboardScroll);
    var observer = new ResizeObserver(letKeyboardScroll);
    document.querySelectorAll(SCROLLERS).forEach(function (element) {
      observer.observe(element);
    });
  });
}());
