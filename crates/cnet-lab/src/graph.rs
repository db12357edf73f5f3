//! Pictures of a lab: DOT and Mermaid text, and an SVG laid out in-process by layout-rs from the
//! same DOT (no Graphviz needed).

use std::fmt::Write as _;

use crate::{End, Lab};

/// The picture formats of `cnet lab graph`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Svg,
    Dot,
    Mermaid,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "svg" => Some(Format::Svg),
            "dot" => Some(Format::Dot),
            "mermaid" => Some(Format::Mermaid),
            _ => None,
        }
    }
}

/// The picture of `lab` in `format`.
pub fn render(lab: &Lab, format: Format) -> Result<String, String> {
    match format {
        Format::Dot => Ok(dot(lab)),
        Format::Mermaid => Ok(mermaid(lab)),
        Format::Svg => svg(lab),
    }
}

/// An end as a label: its interface and address (`eth1 10.0.12.0/31`).
fn end_label(end: &End) -> String {
    let mut label = end.interface.clone();
    for addr in [end.ipv4, end.ipv6].into_iter().flatten() {
        let _ = write!(label, " {addr}");
    }
    label
}

/// DOT's quoted string.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

pub fn dot(lab: &Lab) -> String {
    let mut out = format!("digraph {} {{\n  rankdir=LR;\n", quoted(&lab.name));
    for node in &lab.nodes {
        let _ = writeln!(
            out,
            "  {} [shape=box, label={}];",
            quoted(&node.name),
            quoted(&format!("{}\\n{}", node.name, node.image))
        );
    }
    for link in &lab.links {
        let [a, b] = &link.ends;
        let mut label = format!("{} - {}", end_label(a), end_label(b));
        if let Some(mtu) = link.mtu {
            let _ = write!(label, " (mtu {mtu})");
        }
        let _ = writeln!(out, "  {} -> {} [dir=none, label={}];", quoted(&a.node), quoted(&b.node), quoted(&label));
    }
    for net in &lab.networks {
        let id = format!("net:{}", net.name);
        let _ = writeln!(
            out,
            "  {} [shape=ellipse, label={}];",
            quoted(&id),
            quoted(&format!("{}\\n{}", net.name, net.driver))
        );
        for node in lab.nodes.iter().filter(|n| n.networks.contains(&net.name)) {
            let _ = writeln!(out, "  {} -> {} [dir=none];", quoted(&node.name), quoted(&id));
        }
    }
    out.push_str("}\n");
    out
}

/// Mermaid's node ids: letters, digits and `_` only.
fn mermaid_id(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

pub fn mermaid(lab: &Lab) -> String {
    let text = |s: &str| s.replace('"', "#quot;");
    let mut out = String::from("graph LR\n");
    for node in &lab.nodes {
        let _ = writeln!(out, "  {}[\"{}<br/>{}\"]", mermaid_id(&node.name), text(&node.name), text(&node.image));
    }
    for link in &lab.links {
        let [a, b] = &link.ends;
        let _ = writeln!(
            out,
            "  {} ---|\"{} - {}\"| {}",
            mermaid_id(&a.node),
            text(&end_label(a)),
            text(&end_label(b)),
            mermaid_id(&b.node)
        );
    }
    for net in &lab.networks {
        let id = format!("net_{}", mermaid_id(&net.name));
        let _ = writeln!(out, "  {id}((\"{}<br/>{}\"))", text(&net.name), text(&net.driver));
        for node in lab.nodes.iter().filter(|n| n.networks.contains(&net.name)) {
            let _ = writeln!(out, "  {} --- {id}", mermaid_id(&node.name));
        }
    }
    out
}

pub fn svg(lab: &Lab) -> Result<String, String> {
    use layout::backends::svg::SVGWriter;
    use layout::gv::{DotParser, GraphBuilder};
    let text = dot(lab);
    let mut parser = DotParser::new(&text);
    let graph = parser.process().map_err(|e| format!("laying out the lab: {e}"))?;
    let mut builder = GraphBuilder::new();
    builder.visit_graph(&graph);
    let mut visual = builder.get();
    let mut writer = SVGWriter::new();
    visual.do_it(false, false, false, &mut writer);
    Ok(writer.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAB: &str = "\
name: duo
topology:
  defaults: {image: busybox}
  nodes:
    r1: {}
    r-2: {networks: [lan]}
  links:
    - endpoints: [r1:eth1, r-2:eth1]
      ipv4: [10.0.0.0/31, 10.0.0.1/31]
      mtu: 9000
networks:
  lan: {}
";

    #[test]
    fn dot_and_mermaid_name_every_node_interface_and_address() {
        let lab = Lab::parse("duo.yml", LAB).unwrap();
        assert_eq!(
            dot(&lab),
            "digraph \"duo\" {\n  rankdir=LR;\n  \"r-2\" [shape=box, label=\"r-2\\\\nbusybox\"];\n  \"r1\" [shape=box, label=\"r1\\\\nbusybox\"];\n  \"r-2\" -> \"r1\" [dir=none, label=\"eth1 10.0.0.1/31 - eth1 10.0.0.0/31 (mtu 9000)\"];\n  \"net:lan\" [shape=ellipse, label=\"lan\\\\nbridge\"];\n  \"r-2\" -> \"net:lan\" [dir=none];\n}\n"
        );
        assert_eq!(
            mermaid(&lab),
            "graph LR\n  r_2[\"r-2<br/>busybox\"]\n  r1[\"r1<br/>busybox\"]\n  r_2 ---|\"eth1 10.0.0.1/31 - eth1 10.0.0.0/31\"| r1\n  net_lan((\"lan<br/>bridge\"))\n  r_2 --- net_lan\n"
        );
    }

    #[test]
    fn svg_is_laid_out_in_process() {
        let lab = Lab::parse("duo.yml", LAB).unwrap();
        let svg = render(&lab, Format::Svg).unwrap();
        assert!(svg.contains("<svg"), "{svg}");
        for text in ["r1", "r-2", "10.0.0.0/31", "lan"] {
            assert!(svg.contains(text), "{text} is not in the picture");
        }
        assert_eq!(Format::parse("png"), None);
    }
}
