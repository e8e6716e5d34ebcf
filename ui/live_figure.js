// The page's side of ui/live_figure.py: js_on_load of the hidden gr.HTML channel (element, props, watch
// are gradio's). It folds each diff into its copy of the figure and redraws the target gr.Plot's plotly div.
// element.ttsLive exposes the fold (apply, figure) and a log of what came, for the tests.
const live = element.ttsLive = (() => {
  const held = {rev: 0, layout: {}, order: [], traces: {}, points: {}};
  const log = [];

  function unflatten(flat) {
    const out = {};
    for (const [path, value] of Object.entries(flat)) {
      const parts = path.split('.');
      let node = out;
      for (const p of parts.slice(0, -1)) node = node[p] = node[p] || {};
      node[parts[parts.length - 1]] = value;
    }
    return out;
  }

  function patch(flat, d) {
    for (const k of d.del || []) delete flat[k];
    Object.assign(flat, d.set || {});
    for (const [k, tail] of Object.entries(d.app || {})) flat[k] = flat[k].concat(tail);
  }

  // a diff whose base is what is held is folded in (true); any other is refused (false)
  function apply(diff) {
    if (!diff.reset && diff.base !== held.rev) return false;
    if (diff.reset) { held.layout = {}; held.order = []; held.traces = {}; held.points = {}; }
    held.rev = diff.rev;
    patch(held.layout, diff.layout || {});
    if (diff.order) held.order = diff.order;
    for (const [key, d] of Object.entries(diff.traces || {})) {
      const t = held.traces[key] = held.traces[key] || {rest: {}, ids: null, pf: []};
      if ('ids' in d) t.ids = d.ids;
      if (d.ids_app) t.ids = t.ids.concat(d.ids_app);
      if ('pf' in d) t.pf = d.pf;
      if (d.ids === null) t.rest = {};
      patch(t.rest, d);
    }
    for (const key of Object.keys(held.traces)) if (!held.order.includes(key)) delete held.traces[key];
    for (const [path, values] of Object.entries(diff.points || {})) {
      held.points[path] = Object.assign(held.points[path] || {}, values);
    }
    return true;
  }

  function figure() {
    const data = held.order.map(key => {
      const t = held.traces[key];
      const flat = Object.assign({}, t.rest);
      if (t.ids) {
        flat.ids = t.ids;
        for (const path of t.pf) flat[path] = t.ids.map(id => held.points[path][id]);
      }
      return unflatten(flat);
    });
    return {data, layout: unflatten(held.layout)};
  }

  return {apply, figure, held, log};
})();

watch('value', () => {
  const diff = props.value;
  if (!diff || typeof diff !== 'object' || !diff.rev) return;
  const ok = live.apply(diff);
  const entry = {rev: diff.rev, reset: !!diff.reset, ok, bytes: JSON.stringify(diff).length, drawn: null};
  live.log.push(entry);
  if (!ok) { console.warn('live figure: a diff was lost; the next whole figure redraws it'); return; }
  if (diff.reset) return;  // the first frame: its gr.Plot draws it
  const gd = document.querySelector(`#${props.target} .js-plotly-plot`);
  if (!gd || !window.Plotly) return;
  const fig = live.figure();
  // as gradio's plot component draws a figure (responsive, autosize, margins that grow for the legend)
  fig.layout.autosize = true;
  fig.layout.margin = Object.assign({}, fig.layout.margin, {autoexpand: true});
  window.Plotly.react(gd, fig.data, fig.layout, {responsive: true}).then(() => {
    entry.drawn = gd.querySelectorAll('.scatterlayer path.point').length;
  });
});
