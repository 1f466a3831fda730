() => {
  // Gradio's own interface words in the page's language (see gandemo/ui/i18n.py, gradio_words_js).
  const VI = __WORDS__;
  const EN = Object.fromEntries(Object.entries(VI).map(([en, vi]) => [vi, en]));
  const lang = () => (document.querySelector('#language-switch input:checked') || {}).value || 'en';
  const swap = (root) => {
    if (!root) return;
    const table = lang() === 'vi' ? VI : EN;
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const text = node.nodeValue.trim();
      if (text && table[text] !== undefined) node.nodeValue = node.nodeValue.replace(text, table[text]);
    }
  };
  new MutationObserver((changes) => {
    for (const change of changes) for (const node of change.addedNodes) swap(node.nodeType === 3 ? node.parentNode : node);
  }).observe(document.body, {childList: true, subtree: true});
  let shown = null;  // the switch is set by the page load, a ?lang= link or a click: follow it
  setInterval(() => { if (lang() !== shown) { shown = lang(); swap(document.body); } }, 300);
}
