"""Population screening: ``neckcheck screen`` over a FHIR Bulk Data export (issue 13).

The export is read line by line and spilled to disk partitioned by a hash of the patient (``spill``),
then each partition is grouped by patient and assessed with the same engine as ``$assess``
(``partitions``, ``patient``), in ``--workers`` processes (``local``) or on Apache Spark (``spark``).
Nothing holds the whole export in memory: one partition per worker at most.
"""
