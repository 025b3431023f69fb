"""Operations of a POCare installation as a whole: backups that are proved, and their restore."""
