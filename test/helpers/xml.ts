// A small XML well-formedness check for the SVGs vitpath writes (no XML parser dependency): balanced,
// properly nested tags, quoted attributes, one root, no raw '<' or stray '&' in text or attributes.

export function checkXml(xml: string): { root: string; tags: string[] } {
  const stack: string[] = [];
  const tags: string[] = [];
  let root = '';
  let pos = 0;
  const entity = /&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/;
  const tagRe = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>/y;
  while (pos < xml.length) {
    const lt = xml.indexOf('<', pos);
    const text = xml.slice(pos, lt < 0 ? xml.length : lt);
    if (entity.test(text)) throw new Error(`unescaped & in text: ${text}`);
    if (text.includes('>')) throw new Error(`raw > in text: ${text}`);
    if (lt < 0) break;
    tagRe.lastIndex = lt;
    const m = tagRe.exec(xml);
    if (!m) throw new Error(`malformed tag at ${lt}: ${xml.slice(lt, lt + 80)}`);
    const [, close, name, attrs, selfClose] = m;
    if (entity.test(attrs!)) throw new Error(`unescaped & in attributes of <${name}>`);
    if (close) {
      const top = stack.pop();
      if (top !== name) throw new Error(`</${name}> closes <${top}>`);
    } else {
      if (!root) root = name!;
      else if (stack.length === 0) throw new Error(`second root element <${name}>`);
      tags.push(name!);
      if (!selfClose) stack.push(name!);
    }
    pos = lt + m[0].length;
  }
  if (stack.length) throw new Error(`unclosed <${stack.join('>, <')}>`);
  return { root, tags };
}

/** Marks of one kind in a vega SVG (by their aria role description, e.g. "rect mark", "line mark"). */
export function countMarks(svg: string, role: string): number {
  return (svg.match(new RegExp(`aria-roledescription="${role}"`, 'g')) ?? []).length;
}
