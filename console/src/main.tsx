import { render } from "preact";

function App() {
  return <main>cosmosgate console</main>;
}

render(<App />, document.getElementById("app") as HTMLElement);
