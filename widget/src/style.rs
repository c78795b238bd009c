//! The widget's stylesheet (inside its shadow roots). Colours meet WCAG 2.1 AA contrast
//! (4.5:1 for text) with the defaults; the CMS can theme it with custom properties:
//! `--lotse-primary`, `--lotse-on-primary`, `--lotse-font`, `--lotse-radius`, `--lotse-z`.

use crate::config::Config;

const CSS: &str = r#"
:host { all: initial; display: block; }
.lotse {
  --p: var(--lotse-primary, #00568f);
  --on-p: var(--lotse-on-primary, #ffffff);
  --fg: #1b1b1b; --muted: #4a4a4a; --bg: #ffffff; --soft: #f1f4f7; --line: #c4ccd4;
  --r: var(--lotse-radius, 10px);
  font-family: var(--lotse-font, system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif);
  font-size: 16px; line-height: 1.5; color: var(--fg);
}
.lotse *, .lotse *::before, .lotse *::after { box-sizing: border-box; }
.sr { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
[hidden] { display: none !important; }
button { font: inherit; cursor: pointer; }
:focus-visible { outline: 3px solid #ffbf47; outline-offset: 2px; box-shadow: 0 0 0 5px #1b1b1b; }
.launcher { position: fixed; right: 20px; bottom: 20px; z-index: var(--lotse-z, 2147483000);
  display: inline-flex; align-items: center; gap: .5em; padding: .75em 1.1em; border: 2px solid var(--on-p);
  border-radius: 999px; background: var(--p); color: var(--on-p); font-weight: 600;
  box-shadow: 0 4px 14px rgba(0,0,0,.25); max-width: calc(100vw - 40px); }
.left .launcher { right: auto; left: 20px; }
.dialog { position: fixed; right: 20px; bottom: 20px; z-index: var(--lotse-z, 2147483000);
  width: min(420px, calc(100vw - 24px)); height: min(640px, calc(100vh - 40px));
  display: flex; flex-direction: column; background: var(--bg); color: var(--fg);
  border: 1px solid var(--line); border-radius: var(--r); box-shadow: 0 10px 40px rgba(0,0,0,.3);
  overflow: hidden; animation: lotse-in .18s ease-out; }
.left .dialog { right: auto; left: 20px; }
@keyframes lotse-in { from { opacity: 0; transform: translateY(12px); } to { opacity: 1; transform: none; } }
.head { display: flex; align-items: center; gap: .6em; padding: .7em .8em .7em 1em;
  background: var(--p); color: var(--on-p); }
.head h2 { flex: 1; margin: 0; font-size: 1.05em; font-weight: 700; line-height: 1.3; }
.logo { height: 32px; width: auto; }
.close { display: inline-flex; padding: .45em; border: 0; border-radius: 6px; background: transparent; color: var(--on-p); }
.close:hover { background: rgba(255,255,255,.18); }
.body { flex: 1; overflow-y: auto; padding: 1em; }
.greeting { margin: 0 0 .6em; }
.privacy { margin: 0 0 1em; padding: .6em .8em; border-left: 4px solid var(--p); background: var(--soft);
  font-size: .9em; color: var(--fg); }
.log { margin: 0; padding: 0; }
.exchange { margin: 0 0 1.2em; }
.msg { padding: .6em .8em; border-radius: var(--r); overflow-wrap: anywhere; }
.user { margin-left: 15%; background: var(--p); color: var(--on-p); white-space: pre-wrap; }
.bot { margin-top: .5em; margin-right: 5%; background: var(--soft); }
.bot p { margin: 0 0 .5em; }
.text { white-space: pre-wrap; }
.cite { color: var(--p); font-size: .85em; vertical-align: super; line-height: 0; text-decoration: underline; }
.sources-title { font-weight: 700; margin: .4em 0 .2em !important; }
.sources ol { margin: 0 0 .5em; padding-left: 0; list-style: none; }
.sources li { margin: .2em 0; }
.sources a { color: var(--p); text-decoration: underline; }
.sources .n { font-variant-numeric: tabular-nums; }
.quotes-title { font-weight: 700; margin: .4em 0 .2em !important; }
.quote { margin: 0 0 .6em; }
.quote blockquote { margin: 0; padding: .45em .75em; border-left: 4px solid var(--p); border-radius: 0 6px 6px 0;
  background: #e3e9ef; color: var(--fg); }
.quote blockquote p { margin: 0 !important; white-space: pre-line; }
.quote figcaption { margin: .25em 0 0 .95em; font-size: .9em; color: var(--muted); }
.quote a { color: var(--p); text-decoration: underline; }
.meta { font-size: .85em; color: var(--muted); }
.label { display: inline-block; padding: .05em .5em; border: 1px solid var(--muted); border-radius: 4px;
  font-weight: 700; color: var(--fg); background: var(--bg); }
.flag { font-size: .9em; color: #7a3e00; }
.error, .notice:not(:empty), .offline { color: #8a1c1c; }
.notice:empty { display: none; }
.notice, .offline { margin: 0; padding: .4em 1em; font-size: .9em; background: #fdf0f0; }
.feedback { display: flex; align-items: center; flex-wrap: wrap; gap: .4em; font-size: .9em; color: var(--muted); }
.thumb { display: inline-flex; align-items: center; justify-content: center; min-width: 44px; min-height: 44px;
  padding: .2em .5em; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--fg); }
.thumb svg { width: 20px; height: 20px; }
.thumb[aria-pressed="true"] { border-color: var(--p); background: #dbe9f5; color: var(--p); }
.pending { color: var(--muted); }
.dots::after { content: "…"; display: inline-block; margin-right: .3em; animation: lotse-pulse 1.2s infinite; }
@keyframes lotse-pulse { 50% { opacity: .3; } }
.ask { display: flex; gap: .5em; padding: .7em; border-top: 1px solid var(--line); background: var(--bg); }
.ask input { flex: 1; min-width: 0; min-height: 44px; padding: .5em .7em; font: inherit; color: var(--fg);
  background: var(--bg); border: 2px solid #6b7580; border-radius: 6px; }
.send { min-height: 44px; padding: .5em 1em; border: 0; border-radius: 6px; background: var(--p); color: var(--on-p); font-weight: 600; }
.send[aria-disabled="true"] { opacity: .75; cursor: progress; }
.simplify { display: block; margin: 0 0 1em; }
.simplify-button { display: inline-flex; align-items: center; gap: .5em; min-height: 44px; padding: .5em 1em;
  border: 2px solid var(--p); border-radius: 999px; background: var(--bg); color: var(--p); font-weight: 700; }
.simplify-button:hover { background: var(--soft); }
.simplify .status { margin: .4em 0 0; font-size: .9em; color: var(--muted); }
.simplify .status:empty { display: none; }
.spinner { width: 1em; height: 1em; border: 3px solid var(--line); border-top-color: var(--p); border-radius: 50%;
  animation: lotse-spin 1s linear infinite; }
@keyframes lotse-spin { to { transform: rotate(360deg); } }
@media (max-width: 480px) {
  .dialog { right: 0; left: 0; bottom: 0; top: 0; width: 100%; height: 100%; border-radius: 0; border: 0; }
  .left .dialog { left: 0; }
  .launcher { right: 12px; bottom: 12px; }
  .user { margin-left: 5%; } .bot { margin-right: 0; }
}
@media (max-height: 420px) { .dialog { top: 0; bottom: 0; height: 100%; } }
@media (prefers-reduced-motion: reduce) {
  .lotse *, .lotse *::before, .lotse *::after { animation: none !important; transition: none !important; }
}
@media (forced-colors: active) { .launcher, .send, .label, .thumb { border: 2px solid ButtonText; }
  .quote blockquote { border-left: 4px solid CanvasText; } }
"#;

/// The stylesheet, with the town's colour if the script tag sets one.
pub fn css(config: &Config) -> String {
    match &config.color {
        // a colour from an attribute may only be a colour: no way out of the declaration
        Some(c) if c.chars().all(|ch| ch.is_ascii_alphanumeric() || "#(),.% ".contains(ch)) => {
            format!("{CSS}\n.lotse {{ --p: var(--lotse-primary, {c}); }}\n")
        }
        _ => CSS.to_string(),
    }
}
