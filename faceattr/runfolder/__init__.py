"""A run folder's format, below both the run that writes it and the tools that read it.

:mod:`~faceattr.runfolder.folder` (the files of a run folder, verified on read),
:mod:`~faceattr.runfolder.summary` (the typed per-method summary) and
:mod:`~faceattr.runfolder.schema` (the JSON Schemas of records and summaries). The run
(:mod:`faceattr.experiments`) writes folders, ``faceattr compare`` (:mod:`faceattr.compare`) and
the report read them; neither side imports the other.
"""
