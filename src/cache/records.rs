//! Plain records mirroring the JumpCloud DTOs field by field: the DTOs' serde shape is lenient JSON,
//! not a storage format. The snapshot file stores them, and a snapshot keeps each user packed as one
//! ([`crate::cache::snapshot::PackedUser`]). The conversions destructure every field, so a DTO that gains
//! one does not compile until its record does (and the file's format version moves).

use serde::{Deserialize, Serialize};

use crate::jumpcloud::{
    JcAddress, JcAttribute, JcDirectory, JcDirectoryKind, JcGroup, JcMfa, JcPhoneNumber,
    JcRestrictedField, JcUser,
};

use crate::cache::persist::PersistError;

// === records mirroring the DTOs ===

#[derive(Serialize, Deserialize)]
pub(crate) struct UserRec {
    // `id`, `username` and `manager` lead, so a packed user's head reads them without the rest.
    id: String,
    username: String,
    manager: Option<String>,
    email: String,
    firstname: Option<String>,
    middlename: Option<String>,
    lastname: Option<String>,
    displayname: Option<String>,
    alternate_email: Option<String>,
    state: Option<String>,
    suspended: bool,
    activated: bool,
    account_locked: bool,
    password_expired: bool,
    employee_identifier: Option<String>,
    job_title: Option<String>,
    department: Option<String>,
    cost_center: Option<String>,
    company: Option<String>,
    employee_type: Option<String>,
    location: Option<String>,
    description: Option<String>,
    phone_numbers: Vec<PhoneRec>,
    addresses: Vec<AddressRec>,
    /// (name, value)
    attributes: Vec<(String, String)>,
    mfa: Option<MfaRec>,
    /// Free-form JSON, kept as its text.
    admin: Option<String>,
    restricted_fields: Vec<RestrictedRec>,
    created: Option<String>,
    unix_uid: Option<u64>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct PhoneRec {
    id: Option<String>,
    kind: Option<String>,
    number: Option<String>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct AddressRec {
    id: Option<String>,
    kind: Option<String>,
    po_box: Option<String>,
    extended_address: Option<String>,
    street_address: Option<String>,
    locality: Option<String>,
    region: Option<String>,
    postal_code: Option<String>,
    country: Option<String>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct MfaRec {
    configured: bool,
    exclusion: bool,
    exclusion_days: Option<u64>,
    exclusion_until: Option<String>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct RestrictedRec {
    field: String,
    id: Option<String>,
    kind: Option<String>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct GroupRec {
    id: String,
    name: String,
    description: Option<String>,
    email: Option<String>,
    /// A JSON object, kept as its text.
    attributes: Option<String>,
    membership_method: Option<String>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct DirectoryRec {
    id: String,
    name: Option<String>,
    /// The wire value of `type`.
    kind: String,
    default_domain: Option<String>,
}

pub(crate) fn json_text<T: Serialize>(v: &T) -> String {
    // A JSON value always serialises.
    serde_json::to_string(v).unwrap_or_default()
}

pub(crate) fn from_json_text<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, PersistError> {
    serde_json::from_str(s).map_err(|e| PersistError::Decode(e.to_string()))
}

impl From<&JcUser> for UserRec {
    fn from(u: &JcUser) -> Self {
        let JcUser {
            id,
            username,
            email,
            firstname,
            middlename,
            lastname,
            displayname,
            alternate_email,
            state,
            suspended,
            activated,
            account_locked,
            password_expired,
            employee_identifier,
            job_title,
            department,
            cost_center,
            company,
            employee_type,
            location,
            description,
            manager,
            phone_numbers,
            addresses,
            attributes,
            mfa,
            admin,
            restricted_fields,
            created,
            unix_uid,
        } = u;
        UserRec {
            id: id.clone(),
            username: username.clone(),
            email: email.clone(),
            firstname: firstname.clone(),
            middlename: middlename.clone(),
            lastname: lastname.clone(),
            displayname: displayname.clone(),
            alternate_email: alternate_email.clone(),
            state: state.clone(),
            suspended: *suspended,
            activated: *activated,
            account_locked: *account_locked,
            password_expired: *password_expired,
            employee_identifier: employee_identifier.clone(),
            job_title: job_title.clone(),
            department: department.clone(),
            cost_center: cost_center.clone(),
            company: company.clone(),
            employee_type: employee_type.clone(),
            location: location.clone(),
            description: description.clone(),
            manager: manager.clone(),
            phone_numbers: phone_numbers.iter().map(PhoneRec::from).collect(),
            addresses: addresses.iter().map(AddressRec::from).collect(),
            attributes: attributes
                .iter()
                .map(|JcAttribute { name, value }| (name.clone(), value.clone()))
                .collect(),
            mfa: mfa.as_ref().map(MfaRec::from),
            admin: admin.as_ref().map(json_text),
            restricted_fields: restricted_fields.iter().map(RestrictedRec::from).collect(),
            created: created.clone(),
            unix_uid: *unix_uid,
        }
    }
}

impl TryFrom<UserRec> for JcUser {
    type Error = PersistError;
    fn try_from(u: UserRec) -> Result<Self, PersistError> {
        Ok(JcUser {
            id: u.id,
            username: u.username,
            email: u.email,
            firstname: u.firstname,
            middlename: u.middlename,
            lastname: u.lastname,
            displayname: u.displayname,
            alternate_email: u.alternate_email,
            state: u.state,
            suspended: u.suspended,
            activated: u.activated,
            account_locked: u.account_locked,
            password_expired: u.password_expired,
            employee_identifier: u.employee_identifier,
            job_title: u.job_title,
            department: u.department,
            cost_center: u.cost_center,
            company: u.company,
            employee_type: u.employee_type,
            location: u.location,
            description: u.description,
            manager: u.manager,
            phone_numbers: u.phone_numbers.into_iter().map(Into::into).collect(),
            addresses: u.addresses.into_iter().map(Into::into).collect(),
            attributes: u
                .attributes
                .into_iter()
                .map(|(name, value)| JcAttribute { name, value })
                .collect(),
            mfa: u.mfa.map(Into::into),
            admin: u.admin.as_deref().map(from_json_text).transpose()?,
            restricted_fields: u.restricted_fields.into_iter().map(Into::into).collect(),
            created: u.created,
            unix_uid: u.unix_uid,
        })
    }
}

impl From<&JcPhoneNumber> for PhoneRec {
    fn from(p: &JcPhoneNumber) -> Self {
        let JcPhoneNumber { id, kind, number } = p;
        PhoneRec {
            id: id.clone(),
            kind: kind.clone(),
            number: number.clone(),
        }
    }
}

impl From<PhoneRec> for JcPhoneNumber {
    fn from(p: PhoneRec) -> Self {
        JcPhoneNumber {
            id: p.id,
            kind: p.kind,
            number: p.number,
        }
    }
}

impl From<&JcAddress> for AddressRec {
    fn from(a: &JcAddress) -> Self {
        let JcAddress {
            id,
            kind,
            po_box,
            extended_address,
            street_address,
            locality,
            region,
            postal_code,
            country,
        } = a;
        AddressRec {
            id: id.clone(),
            kind: kind.clone(),
            po_box: po_box.clone(),
            extended_address: extended_address.clone(),
            street_address: street_address.clone(),
            locality: locality.clone(),
            region: region.clone(),
            postal_code: postal_code.clone(),
            country: country.clone(),
        }
    }
}

impl From<AddressRec> for JcAddress {
    fn from(a: AddressRec) -> Self {
        JcAddress {
            id: a.id,
            kind: a.kind,
            po_box: a.po_box,
            extended_address: a.extended_address,
            street_address: a.street_address,
            locality: a.locality,
            region: a.region,
            postal_code: a.postal_code,
            country: a.country,
        }
    }
}

impl From<&JcMfa> for MfaRec {
    fn from(m: &JcMfa) -> Self {
        let JcMfa {
            configured,
            exclusion,
            exclusion_days,
            exclusion_until,
        } = m;
        MfaRec {
            configured: *configured,
            exclusion: *exclusion,
            exclusion_days: *exclusion_days,
            exclusion_until: exclusion_until.clone(),
        }
    }
}

impl From<MfaRec> for JcMfa {
    fn from(m: MfaRec) -> Self {
        JcMfa {
            configured: m.configured,
            exclusion: m.exclusion,
            exclusion_days: m.exclusion_days,
            exclusion_until: m.exclusion_until,
        }
    }
}

impl From<&JcRestrictedField> for RestrictedRec {
    fn from(r: &JcRestrictedField) -> Self {
        let JcRestrictedField { field, id, kind } = r;
        RestrictedRec {
            field: field.clone(),
            id: id.clone(),
            kind: kind.clone(),
        }
    }
}

impl From<RestrictedRec> for JcRestrictedField {
    fn from(r: RestrictedRec) -> Self {
        JcRestrictedField {
            field: r.field,
            id: r.id,
            kind: r.kind,
        }
    }
}

impl From<&JcGroup> for GroupRec {
    fn from(g: &JcGroup) -> Self {
        let JcGroup {
            id,
            name,
            description,
            email,
            attributes,
            membership_method,
        } = g;
        GroupRec {
            id: id.clone(),
            name: name.clone(),
            description: description.clone(),
            email: email.clone(),
            attributes: attributes.as_ref().map(json_text),
            membership_method: membership_method.clone(),
        }
    }
}

impl TryFrom<GroupRec> for JcGroup {
    type Error = PersistError;
    fn try_from(g: GroupRec) -> Result<Self, PersistError> {
        Ok(JcGroup {
            id: g.id,
            name: g.name,
            description: g.description,
            email: g.email,
            attributes: g.attributes.as_deref().map(from_json_text).transpose()?,
            membership_method: g.membership_method,
        })
    }
}

impl From<&JcDirectory> for DirectoryRec {
    fn from(d: &JcDirectory) -> Self {
        let JcDirectory {
            id,
            name,
            kind,
            default_domain,
        } = d;
        DirectoryRec {
            id: id.clone(),
            name: name.clone(),
            kind: kind.as_str().to_owned(),
            default_domain: default_domain.clone(),
        }
    }
}

impl From<DirectoryRec> for JcDirectory {
    fn from(d: DirectoryRec) -> Self {
        JcDirectory {
            id: d.id,
            name: d.name,
            kind: JcDirectoryKind::from(d.kind.as_str()),
            default_domain: d.default_domain,
        }
    }
}
