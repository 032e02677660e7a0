// Text as Chinese Windows saves it by default (GBK), for tests of input that is not UTF-8 — what
// `iconv -f utf-8 -t gbk` makes. Node decodes GBK but cannot encode it, so the encoder is the
// decoder's table turned round: every two-byte GBK code decoded once.
let encoding: Map<string, Buffer> | undefined;

function gbkTable(): Map<string, Buffer> {
  if (!encoding) {
    encoding = new Map();
    const decoder = new TextDecoder('gbk', { fatal: true });
    for (let lead = 0x81; lead <= 0xfe; lead++) {
      for (let trail = 0x40; trail <= 0xfe; trail++) {
        const bytes = Buffer.from([lead, trail]);
        try {
          const char = decoder.decode(bytes);
          if (!encoding.has(char)) encoding.set(char, bytes);
        } catch {
          // not a GBK code
        }
      }
    }
  }
  return encoding;
}

/** `text` encoded as GBK (ASCII is the same in both encodings). */
export function gbkBytes(text: string): Buffer {
  const table = gbkTable();
  return Buffer.concat([...text].map((char) => {
    if (char.charCodeAt(0) < 0x80) return Buffer.from(char, 'latin1');
    const bytes = table.get(char);
    if (!bytes) throw new Error(`gbkBytes: ${char} has no GBK code`);
    return bytes;
  }));
}
