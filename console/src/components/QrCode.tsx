/**
 * A QR code as SVG elements (no inline style: the page's CSP forbids it), dark on light in both
 * themes. The encoder (uqr) is its own chunk, loaded only where invites are made.
 */
import { useEffect, useMemo, useState } from "preact/hooks";

type Encode = typeof import("uqr").encode;

let encoder: Promise<Encode> | undefined;

/** Starts loading the encoder (the People page calls it on arrival, before any invite). */
export function loadQrEncoder(): Promise<Encode> {
  encoder ??= import("uqr").then((m) => m.encode);
  return encoder;
}

export function QrCode({ value, label }: { value: string; label: string }) {
  const [encode, setEncode] = useState<Encode | null>(null);
  useEffect(() => {
    let alive = true;
    loadQrEncoder().then((e) => alive && setEncode(() => e));
    return () => {
      alive = false;
    };
  }, []);
  const qr = useMemo(() => {
    if (encode === null) return null;
    const code = encode(value, { ecc: "M", border: 2 });
    let path = "";
    code.data.forEach((row, y) => {
      row.forEach((dark, x) => {
        if (dark) path += `M${x} ${y}h1v1h-1z`;
      });
    });
    return { size: code.size, d: path };
  }, [encode, value]);
  if (qr === null) return <p class="qr-loading">Drawing the QR code…</p>;
  return (
    <svg
      class="qr"
      viewBox={`0 0 ${qr.size} ${qr.size}`}
      role="img"
      aria-label={label}
      shape-rendering="crispEdges"
      data-testid="invite-qr"
    >
      <rect class="qr-light" width={qr.size} height={qr.size} />
      <path class="qr-dark" d={qr.d} />
    </svg>
  );
}
