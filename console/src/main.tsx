import { render } from "preact";
import { App } from "./app";
import "./styles.css";
import { applyTheme, storedTheme } from "./theme";

// The remembered theme first, before anything is drawn.
applyTheme(storedTheme());

const root = document.getElementById("app") as HTMLElement;
root.textContent = "";
render(<App />, root);
