//! The report as one self-contained HTML page: the Markdown page rendered (pulldown-cmark,
//! tables included) inside inline styles, each chart's SVG inlined where the Markdown links
//! it. Nothing is fetched: the page opens from a file, offline, and shows everything.

use pulldown_cmark::{html, Options, Parser};

use crate::charts;
use crate::markdown;
use crate::{render_markdown, Report, ReportError};

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;\
max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}\
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}\
th,td{border:1px solid #ccc;padding:0.3em 0.6em;text-align:left;vertical-align:top}\
th{background:#f3f3f3}code{background:#f3f3f3;padding:0 0.2em}\
figure{margin:1.5em 0}figure svg{max-width:100%;height:auto}\
figcaption{font-size:0.9em;color:#555}h2{border-bottom:1px solid #ddd;padding-bottom:0.2em}";

/// `index.html`: the page of [`render_markdown`] with its charts inlined.
pub fn render_html(report: &Report) -> Result<String, ReportError> {
    let mut page = render_markdown(report);
    for record in &report.records {
        for chart in charts::planned(&record.results, &record.name) {
            let svg = charts::svg(&record.results, &chart)?;
            // An HTML block ends at a blank line: the SVG is kept on lines that are not blank.
            let svg: Vec<&str> = svg.lines().filter(|l| !l.trim().is_empty()).collect();
            let caption = match &chart.note {
                Some(note) => format!("{}<br>\n{}", escape(&chart.title), escape(note)),
                None => escape(&chart.title),
            };
            let figure = format!(
                "<figure>\n{}\n<figcaption>{caption}</figcaption>\n</figure>",
                svg.join("\n"),
            );
            page = page.replacen(&markdown::chart_block(&chart), &figure, 1);
        }
    }
    let mut body = String::new();
    html::push_html(&mut body, Parser::new_ext(&page, Options::ENABLE_TABLES));
    Ok(format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>dlbench report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n\
         </html>\n"
    ))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
