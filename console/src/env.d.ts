/** Side-effect style imports, bundled by Vite into the console's CSS file. */
declare module "*.css";
