//! Formats a [`CpuDef`] exactly as libvirt does: 2-space indent, libvirt's element and
//! attribute order, self-closing `<cpu/>` when there are no children.

use super::def::{CpuDef, CpuKind, CpuMode, Fallback};
use super::xml_tree::escape;

impl CpuDef {
    /// The `<cpu>` element as libvirt prints it, ending in a newline.
    pub fn to_xml(&self) -> String {
        self.to_xml_indented(0)
    }

    /// Like [`CpuDef::to_xml`], every line indented by `indent` spaces (for embedding in
    /// capabilities documents).
    pub fn to_xml_indented(&self, indent: usize) -> String {
        let pad = " ".repeat(indent);
        let mut attrs = String::new();
        if self.kind == CpuKind::Guest {
            if self.mode != CpuMode::Custom || self.model.is_some() {
                attrs.push_str(&format!(" mode='{}'", self.mode.as_str()));
            }
            if self.model.is_some() && self.mode == CpuMode::Custom {
                attrs.push_str(&format!(" match='{}'", self.effective_match().as_str()));
            }
            if let Some(check) = self.check {
                attrs.push_str(&format!(" check='{}'", check.as_str()));
            }
        }
        let children: Vec<String> = self.children();
        if children.is_empty() {
            return format!("{pad}<cpu{attrs}/>\n");
        }
        let mut out = format!("{pad}<cpu{attrs}>\n");
        for child in children {
            out.push_str(&format!("{pad}  {child}\n"));
        }
        out.push_str(&format!("{pad}</cpu>\n"));
        out
    }

    /// The child elements, one per line, without indentation.
    pub(crate) fn children(&self) -> Vec<String> {
        let mut out = Vec::new();
        // libvirt shows the architecture of host CPUs only; it also marks a <cpu> as host form.
        if let (CpuKind::Host, Some(arch)) = (self.kind, &self.arch) {
            out.push(format!("<arch>{}</arch>", escape(arch)));
        }
        let format_model = matches!(self.mode, CpuMode::Custom | CpuMode::HostModel);
        let format_fallback = self.kind == CpuKind::Guest
            && (self.mode == CpuMode::HostModel
                || (self.mode == CpuMode::Custom && self.model.is_some()));
        if (format_model && self.model.is_some()) || format_fallback {
            let mut model = String::from("<model");
            if format_fallback {
                let fallback = self.fallback.unwrap_or(Fallback::Allow);
                model.push_str(&format!(" fallback='{}'", fallback.as_str()));
            }
            match (&self.model, format_model) {
                (Some(name), true) => model.push_str(&format!(">{}</model>", escape(name))),
                _ => model.push_str("/>"),
            }
            out.push(model);
        }
        if let (true, Some(vendor)) = (format_model, &self.vendor) {
            out.push(format!("<vendor>{}</vendor>", escape(vendor)));
        }
        if let Some(sig) = &self.signature {
            out.push(format!(
                "<signature family='{}' model='{}' stepping='{}'/>",
                sig.family, sig.model, sig.stepping
            ));
        }
        if let Some(t) = &self.topology {
            out.push(format!(
                "<topology sockets='{}' dies='{}' clusters='{}' cores='{}' threads='{}'/>",
                t.sockets, t.dies, t.clusters, t.cores, t.threads
            ));
        }
        for feature in &self.features {
            let name = escape(&feature.name);
            match (self.kind, feature.policy) {
                (CpuKind::Guest, Some(policy)) => out.push(format!(
                    "<feature policy='{}' name='{name}'/>",
                    policy.as_str()
                )),
                _ => out.push(format!("<feature name='{name}'/>")),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::cpu::def::*;

    #[test]
    fn guest_cpu_round_trips_in_libvirt_order() {
        let xml = "<cpu mode='custom' match='exact'>\n  <model fallback='forbid'>Penryn</model>\n  <vendor>Intel</vendor>\n  <feature policy='require' name='dca'/>\n  <feature policy='disable' name='vmx'/>\n</cpu>\n";
        let cpu = CpuDef::from_xml(xml).unwrap();
        assert_eq!(cpu.kind, CpuKind::Guest);
        assert_eq!(cpu.fallback, Some(Fallback::Forbid));
        assert_eq!(cpu.features[1].policy, Some(Policy::Disable));
        assert_eq!(cpu.to_xml(), xml);
    }

    #[test]
    fn host_cpu_round_trips_with_signature() {
        let xml = "<cpu>\n  <arch>x86_64</arch>\n  <model>Skylake-Client-v2</model>\n  <vendor>Intel</vendor>\n  <signature family='6' model='158' stepping='10'/>\n  <feature name='vmx'/>\n</cpu>\n";
        let cpu = CpuDef::from_xml(xml).unwrap();
        assert_eq!(cpu.kind, CpuKind::Host);
        assert_eq!(cpu.features[0].policy, None);
        assert_eq!(cpu.to_xml(), xml);
    }

    #[test]
    fn defaults_fill_in_match_policy_and_fallback() {
        let cpu =
            CpuDef::from_xml("<cpu><model>Penryn</model><feature name='vmx'/></cpu>").unwrap();
        assert_eq!(cpu.features[0].policy, Some(Policy::Require));
        assert_eq!(
            cpu.to_xml(),
            "<cpu mode='custom' match='exact'>\n  <model fallback='allow'>Penryn</model>\n  <feature policy='require' name='vmx'/>\n</cpu>\n"
        );
        assert_eq!(
            CpuDef::from_xml("<cpu mode='host-passthrough'/>")
                .unwrap()
                .to_xml(),
            "<cpu mode='host-passthrough'/>\n"
        );
    }

    #[test]
    fn bad_keywords_are_named() {
        let err = CpuDef::from_xml("<cpu><model>X</model><feature name='a' policy='maybe'/></cpu>")
            .unwrap_err();
        assert!(
            err.to_string().contains("unknown feature policy 'maybe'"),
            "{err}"
        );
        assert!(
            CpuDef::from_xml("<cpu mode='bogus'/>")
                .unwrap_err()
                .to_string()
                .contains("unknown CPU mode")
        );
        assert!(CpuDef::from_xml("<cpu><feature name='a'/></cpu>").is_err());
        assert!(
            CpuDef::from_xml("<domain/>")
                .unwrap_err()
                .to_string()
                .contains("expected a <cpu>")
        );
    }
}
