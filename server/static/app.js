// Home page: YASGUI against this server's /sparql, one tab per canned query.
(function () {
  if (typeof Yasgui === "undefined") return;
  var endpoint = window.location.origin + "/sparql";
  var tabs = JSON.parse(document.getElementById("canned-tabs").textContent);
  var yasgui = new Yasgui(document.getElementById("yasgui"), {
    requestConfig: { endpoint: endpoint, method: "POST" },
    copyEndpointOnNewTab: true,
    persistenceId: null, // no localStorage state: the page always shows the current queries
    populateFromUrl: false,
    endpointCatalogueOptions: { getData: function () { return []; } },
  });
  var first = Object.keys(yasgui._tabs)[0];
  tabs.forEach(function (t) {
    yasgui.addTab(false, Object.assign({}, Yasgui.Tab.getDefaults(), {
      name: t.name, yasqe: { value: t.query }, requestConfig: { endpoint: endpoint, method: "POST" },
    }));
  });
  window.jicengYasgui = yasgui;
  if (first && tabs.length) {
    // Keep the blank default tab as the first one, for free queries.
    yasgui.getTab(first).setName("SPARQL");
  }
})();
