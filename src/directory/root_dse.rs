//! What a server says of itself in its root DSE: who made it, the trees it holds, and which change
//! feed incremental runs can follow.

use super::connect::Connection;
use super::delta::{SHOW_DELETED_OID, SYNC_REQUEST_OID, base_entry};
use super::entry::Entry;
use super::error::DirectoryError;

/// `supportedCapabilities` value of Active Directory (and Samba's AD DC).
const ACTIVE_DIRECTORY_OID: &str = "1.2.840.113556.1.4.800";

/// What the server offers a sync.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Offer {
    pub vendor: Option<String>,
    pub vendor_version: Option<String>,
    pub naming_contexts: Vec<String>,
    pub default_naming_context: Option<String>,
    /// `USNChanged`, `Syncrepl` or `None`.
    pub change_feed: &'static str,
}

/// Reads the root DSE on a bound connection.
pub async fn inspect(conn: &mut Connection) -> Result<Offer, DirectoryError> {
    let attributes = vec![
        "objectClass",
        "vendorName",
        "vendorVersion",
        "namingContexts",
        "defaultNamingContext",
        "supportedControl",
        "supportedCapabilities",
    ];
    let root = base_entry(conn, "", attributes).await?;
    Ok(root.as_ref().map(offer).unwrap_or(Offer {
        change_feed: "None",
        ..Offer::default()
    }))
}

/// The offer a root DSE entry makes (pure).
pub fn offer(root: &Entry) -> Offer {
    let has = |attribute: &str, value: &str| {
        root.values(attribute)
            .iter()
            .any(|v| v.eq_ignore_ascii_case(value.as_bytes()))
    };
    let text = |attribute: &str| root.text(attribute).map(str::to_owned);
    let active_directory = has("supportedCapabilities", ACTIVE_DIRECTORY_OID);
    let vendor_name = text("vendorName");
    let vendor = if active_directory {
        match &vendor_name {
            Some(name) if name.contains("Samba") => Some("Samba".to_owned()),
            _ => Some("Active Directory".to_owned()),
        }
    } else if has("objectClass", "OpenLDAProotDSE") {
        Some("OpenLDAP".to_owned())
    } else if vendor_name.as_deref() == Some("389 Project") {
        Some("389 Directory Server".to_owned())
    } else {
        vendor_name
    };
    let change_feed = if active_directory && has("supportedControl", SHOW_DELETED_OID) {
        "USNChanged"
    } else if has("supportedControl", SYNC_REQUEST_OID) {
        "Syncrepl"
    } else {
        "None"
    };
    Offer {
        vendor,
        vendor_version: text("vendorVersion"),
        naming_contexts: root
            .values("namingContexts")
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect(),
        default_naming_context: text("defaultNamingContext"),
        change_feed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendors_and_feeds_are_told_apart() {
        let samba = Entry::new(
            "",
            &[
                ("supportedCapabilities", &[ACTIVE_DIRECTORY_OID]),
                ("supportedControl", &[SHOW_DELETED_OID]),
                ("vendorName", &["Samba Team (https://www.samba.org)"]),
                ("defaultNamingContext", &["DC=corp,DC=example"]),
                (
                    "namingContexts",
                    &["DC=corp,DC=example", "CN=Configuration,DC=corp,DC=example"],
                ),
            ],
        );
        let offer = offer(&samba);
        assert_eq!(offer.vendor.as_deref(), Some("Samba"));
        assert_eq!(offer.change_feed, "USNChanged");
        assert_eq!(offer.naming_contexts.len(), 2);
        assert_eq!(
            offer.default_naming_context.as_deref(),
            Some("DC=corp,DC=example")
        );
        let openldap = Entry::new(
            "",
            &[
                ("objectClass", &["top", "OpenLDAProotDSE"]),
                ("supportedControl", &[SYNC_REQUEST_OID]),
            ],
        );
        assert_eq!(offer_of(&openldap), (Some("OpenLDAP"), "Syncrepl"));
        let ds389 = Entry::new("", &[("vendorName", &["389 Project"])]);
        assert_eq!(offer_of(&ds389), (Some("389 Directory Server"), "None"));
        // Show Deleted alone is no feed: only Active Directory's uSNChanged goes with it.
        let other = Entry::new("", &[("supportedControl", &[SHOW_DELETED_OID])]);
        assert_eq!(offer_of(&other), (None, "None"));
    }

    fn offer_of(entry: &Entry) -> (Option<&'static str>, &'static str) {
        let offer = offer(entry);
        let vendor = offer.vendor.map(|v| &*Box::leak(v.into_boxed_str()));
        (vendor, offer.change_feed)
    }
}
