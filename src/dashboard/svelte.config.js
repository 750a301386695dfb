// Svelte's settings for the dashboard (read by vite-plugin-svelte and svelte-check): the defaults.
export default {};
