// The service worker of the exported web app: it keeps every file of the site in a cache,
// so the app starts and predicts offline. `SITE` (the line above, written by the export)
// names the files and a version that changes with any of them: a new version fills a
// new cache and, once active, deletes the old one.
"use strict";
const PREFIX = `tinygrad-mnist ${self.registration.scope} `;
const CACHE = PREFIX + SITE.version;

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await cache.addAll(SITE.files.map((file) => new Request(file, { cache: "reload" })));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

// The cached copy when there is one (always, once installed), else the network.
self.addEventListener("fetch", (event) => {
  if (event.request.method !== "GET") return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    return (await cache.match(event.request, { ignoreSearch: true })) || fetch(event.request);
  })());
});
