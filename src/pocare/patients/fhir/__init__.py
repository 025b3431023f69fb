"""FHIR R5 exchange of the patient's pathway (docs/fhir.md): the endpoint under ``/fhir/``, export of
products, dispenses and the clinical record as R5 resources and patient Bundles, import of
ServiceRequests as referrals, and the validation every exported and imported resource goes through.

Modules: ``capability`` (the CapabilityStatement), ``export`` (what a client may see, as resources),
``importer`` (ServiceRequest → referral), ``validation`` (fhir.resources models, the required bindings
and invariants POCare uses), ``views`` and ``urls`` (the HTTP endpoint).
"""

from __future__ import annotations

#: The media type of every answer (FHIR R5 JSON).
FHIR_JSON = "application/fhir+json"
FHIR_VERSION = "5.0.0"

#: POCare's own naming systems and definitions, documented in docs/fhir.md. The base is a URI that
#: names POCare's definitions; it is not fetched by anyone.
BASE = "https://pocare.eu/fhir"
SID_PSEUDONYM = f"{BASE}/sid/pseudonym"
SID_REFERRAL = f"{BASE}/sid/referral"
SID_BATCH = f"{BASE}/sid/batch"
SID_COI = f"{BASE}/sid/coi"
#: The ISBT 128 Donation Identification Number as printed on the bag: 13 characters, flags, check.
SID_DIN = f"{BASE}/sid/din"
SID_SITE = f"{BASE}/sid/site"
SID_CONSENT = f"{BASE}/sid/consent"
SID_ADVERSE_EVENT = f"{BASE}/sid/adverse-event"
#: The network's product codes (masterfile.Product.code). ISBT 128 product codes are licensed by
#: ICCBBA: a site that holds the tables adds its own coding beside this one; POCare ships none.
CS_PRODUCT = f"{BASE}/CodeSystem/product"
CS_RELEASE_STATUS = f"{BASE}/CodeSystem/release-status"
CS_BDP_PROPERTY = f"{BASE}/CodeSystem/bdp-property"
CS_PROCEDURE = f"{BASE}/CodeSystem/procedure"
CS_GRADE = f"{BASE}/CodeSystem/astct-grade"
CS_AE_KIND = f"{BASE}/CodeSystem/adverse-event-kind"
#: The release status of a product (the QP's decision), which R5's productStatus
#: (available / unavailable) cannot say.
EXT_RELEASE_STATUS = f"{BASE}/StructureDefinition/release-status"
