import { defineContract, type ClientOf } from '../../http/contract.js';
import { statusMethod } from '../../core/role-status.js';

// The retrieval role's interface, shared by its in-process and HTTP forms. Later work adds methods here.
export const RetrievalContract = defineContract('retrieval', {
  status: statusMethod,
});
export type RetrievalClient = ClientOf<typeof RetrievalContract>;
