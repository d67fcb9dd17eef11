// Offline copy of the page: network first (so a new model or page is always picked up),
// the last copy when the network is gone. The page sends the URLs it loaded (scripts, the
// LiteRT.js .wasm, the model) once it is ready, and they are cached then.

const CACHE = 'crnn-gan-web-v1';

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('message', (event) => {
  const urls = (event.data && event.data.cache) || [];
  event.waitUntil(caches.open(CACHE).then((cache) => Promise.all(urls.map((url) =>
    fetch(url).then((response) => response.ok && cache.put(url, response)).catch(() => {})))));
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET' || !request.url.startsWith(self.location.origin)) return;
  event.respondWith(fetch(request).then((response) => {
    if (response.ok) {
      const copy = response.clone();
      caches.open(CACHE).then((cache) => cache.put(request, copy));
    }
    return response;
  }).catch(async () => (await caches.match(request)) ||
    (await caches.match(request, {ignoreSearch: true})) ||
    new Response('offline and not cached', {status: 503, statusText: 'offline'})));
});
