// The dashboard's entry: mounts the page and starts polling the supervisor and the nodes.
import { mount } from "svelte";
import App from "./App.svelte";
import { startPolling } from "./control.svelte.js";
import "./style.css";

const target = document.getElementById("app");
if (target === null) throw new Error("index.html has no #app element");
mount(App, { target });
startPolling();
