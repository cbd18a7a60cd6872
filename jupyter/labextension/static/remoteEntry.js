// A JupyterLab extension with no build step: it shares no packages, so this hand-written file
// is the whole "module federation container" JupyterLab loads (window._JUPYTERLAB[name]).
// It shows the message a save reply carries (course/pairing.py: "bigram.py was changed on disk
// ... kept in bigram.py.bak-..."), as a notification that stays until it is closed.
(function () {
  const plugin = {
    id: "llm-from-scratch:save-messages",
    description: "Shows the server's message about a save.",
    autoStart: true,
    activate: (app) => {
      app.serviceManager.contents.fileChanged.connect((_, change) => {
        const message = change.type === "save" && change.newValue && change.newValue.message;
        if (message) {
          app.commands.execute("apputils:notify", {message, type: "warning", options: {autoClose: false}});
        }
      });
    },
  };
  window._JUPYTERLAB = window._JUPYTERLAB || {};
  window._JUPYTERLAB["llm-from-scratch"] = {
    init: () => Promise.resolve(),
    get: (module) => Promise.resolve(() => ({__esModule: true, default: plugin})),
  };
})();
