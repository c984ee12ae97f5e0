"""Data-subject requests (GDPR Art. 15-20) on the store: tracking, collection, erasure.

* ``requests`` — each request is a row with a state and its steps, so a failed step is run
  again (``custos dsr resume``) without redoing the ones that succeeded;
* ``collect`` — everything the store holds on one person, and who read it (from the audit log);
* ``erasure`` — finds every row of the person in every table, deletes them, and purges the
  freed bytes (the store's ``secure_delete`` and ``purge``);
* ``suppression`` — keyed hashes of an erased person's identifiers, and the check ingestion runs
  so that the person does not come back;
* ``html`` — the access report as a standalone HTML page.

The workflows that also need the consent ledger or the normalisers live in
:mod:`custos.service.dsr`.
"""
