// Starts the vendored Swagger UI on /docs (templates/docs.html). A file, not an inline
// script, so /docs runs under the app's CSP like every other page. No relaxation is needed:
// Swagger UI 5 sets styles through the DOM (allowed by style-src 'self'), its icons are
// data: images (img-src), and "Try it out" calls this origin (connect-src 'self');
// tests/browser/test_docs.py fails on any CSP violation.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url") || "/openapi.json",
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null, // no badge fetched from validator.swagger.io: /docs works offline
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
})();
