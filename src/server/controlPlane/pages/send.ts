import type { FastifyReply } from "fastify";
import type { Html } from "./html.js";

/**
 * Sends a page. Every HTML reply gets the page CSP and anti-framing headers from the control
 * plane's `onSend` hook, so this only sets the status and type.
 */
export function sendPage(reply: FastifyReply, page: Html, status = 200): FastifyReply {
  return reply.code(status).type("text/html; charset=utf-8").send(page.text);
}
